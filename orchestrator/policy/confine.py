"""Confinement: what an untrusted spec points at stays inside its repository (the git top level of
the spec's folder, or the folder itself outside git): the workspace, the graph file, prompt files,
the output folder, include/exclude globs. Only the operator widens it (`--workspace DIR`, or the
operator policy's `workspaces`). Checked before any file of the workspace is read."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from orchestrator.errors import Problem
from orchestrator.spec import LoadedSpec
from orchestrator.spec._document import OVERRIDE
from orchestrator.spec.graphfile import GraphDefinition, is_python_graph, python_graph_problem
from orchestrator.spec.operator import Operator


def repository_root(spec_path: Path) -> Path:
    """The git top level of the spec's folder (a `.git` folder or file), or the folder itself."""
    folder = spec_path.resolve().parent
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return folder


def _inside(path: Path, roots: list[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(root) for root in roots)


def confine(loaded: LoadedSpec, operator: Operator, graph: GraphDefinition | None, problems: list[Problem]) -> None:
    """Problems (exit 2) for everything of the spec that points outside its repository."""
    root = repository_root(loaded.path)
    roots = [root, *(Path(p).expanduser().resolve() for p in operator.policy.workspaces)]
    widen = "; only the operator can widen it (--workspace DIR, or the operator policy's workspaces)"
    if operator.workspace is None and not _inside(loaded.workspace, roots):
        message = f"{loaded.workspace} is outside the spec's repository {root}{widen}"
        problems.append(loaded.problem(("workspace",), message))
    for key in ("include", "exclude"):
        for index, pattern in enumerate(getattr(loaded.spec, key)):
            pure = PurePosixPath(pattern)
            if pure.is_absolute() or ".." in pure.parts or "\0" in pattern:
                listed = isinstance(loaded.document.data.get(key), list)
                where: tuple[str | int, ...] = (key, index) if listed else (key,)
                problems.append(loaded.problem(where, f"'{pattern}' climbs out of the workspace"))
    output = loaded.base_dir / loaded.spec.output.dir
    if loaded.document.origin_of(("output", "dir")) != OVERRIDE and not _inside(output, [root]):
        message = f"{output} is outside the spec's repository {root}; the operator may choose --output-dir"
        problems.append(loaded.problem(("output", "dir"), message))
    ref = loaded.spec.graph
    outside = f"prompt file is outside the spec's repository {root}"
    if graph is not None and not graph.builtin and not _inside(graph.document.path, [root]):
        problems.append(loaded.problem(("graph",), f"graph file {graph.document.path} is outside {root}"))
    for name, role in loaded.spec.roles.items():
        if role.prompt_file and not _inside(loaded.base_dir / role.prompt_file, [root]):
            problems.append(
                loaded.problem(("roles", name, "prompt_file"), f"prompt file is outside the spec's repository {root}")
            )
    if graph is not None and not graph.builtin:  # a shipped graph's prompts are the package's
        for name, role in graph.graph.roles.items():
            if role.prompt_file and not _inside(graph.base_dir / role.prompt_file, [root]):
                problems.append(graph.document.problem(("roles", name, "prompt_file"), outside))
    if is_python_graph(ref) and (why := python_graph_problem(ref)):
        problems.append(loaded.problem(("graph",), why))
