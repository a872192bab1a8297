"""Tool arguments are hostile input: where a spec path may point (inside the server's workspace),
and the spec an inline `run_workflow` call makes of a goal, files, models and a graph (its files
confined to the workspace: no absolute path, no `..`), validated like a spec file and then held
to the operator's policy like one. Raises SpecError (exit 2) with one line per problem."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from orchestrator.errors import Problem, SpecError, printable
from orchestrator.spec import Document, LoadedSpec, Spec, validate_document
from orchestrator.spec.graphfile import builtin_graph_names
from orchestrator.spec.operator import Operator

INLINE = "run_workflow"  # where the problems of an inline spec are said to be
INLINE_FILE = ".orchestrator-mcp-inline.yaml"  # the inline spec's name in the workspace (never written)
MAX_PATH = 1024
MAX_FILES = 200
MAX_GOAL = 20_000
MAX_MODELS = 32
MAX_CHAIN = 16
MAX_MODEL_REF = 256
MAX_PATCH = 2_000_000
ROLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")


@dataclass(frozen=True)
class Inline:
    """An inline run: what the spec file would have said."""

    goal: str
    files: list[str]
    models: dict[str, list[str]] | None
    graph: str


ARGUMENTS_HINT = "fix the tool's arguments (validate_spec checks a spec file without running it)"


def problem(field: str, message: str) -> SpecError:
    return SpecError([Problem(INLINE, None, field, message)], hint=ARGUMENTS_HINT)


def roots(root: Path, operator: Operator) -> list[Path]:
    """Where a spec path may point: the server's workspace and the operator policy's workspaces."""
    return [root, *(Path(p).expanduser().resolve() for p in operator.policy.workspaces)]


def spec_path(text: str, root: Path, operator: Operator, field: str = "spec") -> Path:
    """A spec file named by a client: relative to the server's workspace, and inside it."""
    resolved = resolve(root / _path_text(text, field), field)
    allowed = roots(root, operator)
    if not any(resolved.is_relative_to(r) for r in allowed):
        raise SpecError(
            [Problem("", None, field, f"{printable(text)} is outside the server's workspace {root}")],
            hint="give a path inside the workspace, or start the server with --workspace DIR",
        )
    return resolved


def resolve(path: Path, field: str) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long
        raise SpecError([Problem("", None, field, f"{printable(path)}: {exc}")], hint=ARGUMENTS_HINT) from None


def _path_text(text: str, field: str) -> str:
    if not text or len(text) > MAX_PATH or "\0" in text:
        raise SpecError(
            [Problem("", None, field, f"a path of 1 to {MAX_PATH} characters without NUL")], hint=ARGUMENTS_HINT
        )
    return text


def relative_glob(text: str, field: str) -> str:
    """A path or glob inside the workspace: relative, never climbing out with `..`."""
    _path_text(text, field)
    pure = PurePosixPath(text.replace("\\", "/"))
    if pure.is_absolute() or PureWindowsPath(text).drive or text.startswith("~"):
        raise problem(field, f"'{printable(text)}' is not relative to the workspace")
    if ".." in pure.parts:
        raise problem(field, f"'{printable(text)}' climbs out of the workspace")
    return text


def inline_request(
    goal: str | None, files: list[str] | None, models: dict[str, Any] | str | None, graph: str | None, root: Path
) -> Inline:
    """Check an inline call's arguments (each bounded, typed and confined)."""
    if not isinstance(goal, str) or not goal.strip() or len(goal) > MAX_GOAL:
        raise problem("goal", f"a goal of 1 to {MAX_GOAL} characters is required (or give a spec)")
    if not isinstance(files, list) or not files or len(files) > MAX_FILES:
        raise problem("files", f"1 to {MAX_FILES} paths or globs in the workspace are required")
    globs = [
        relative_glob(f, f"files.{i}") if isinstance(f, str) else _not_text(f"files.{i}") for i, f in enumerate(files)
    ]
    return Inline(goal=goal, files=globs, models=_models(models), graph=_graph(graph, root))


def _not_text(field: str) -> str:
    raise problem(field, "a string is required")


def _models(models: dict[str, Any] | str | None) -> dict[str, list[str]] | None:
    if models is None:
        return None
    if isinstance(models, str):
        return {"default": [_model_ref(models, "models")]}
    if not isinstance(models, dict) or not models or len(models) > MAX_MODELS:
        raise problem("models", f"a model id, or 1 to {MAX_MODELS} entries role -> model id (or a fallback chain)")
    chains: dict[str, list[str]] = {}
    for role, value in models.items():
        if not isinstance(role, str) or not ROLE_NAME.match(role):
            raise problem("models", f"'{printable(role)}' is not a role name")
        refs = [value] if isinstance(value, str) else value
        if not isinstance(refs, list) or not refs or len(refs) > MAX_CHAIN:
            raise problem(f"models.{role}", f"a model id or a chain of 1 to {MAX_CHAIN} model ids")
        chains[role] = [_model_ref(ref, f"models.{role}") for ref in refs]
    return chains


def _model_ref(ref: Any, field: str) -> str:
    if not isinstance(ref, str) or not ref or len(ref) > MAX_MODEL_REF or any(c.isspace() for c in ref):
        raise problem(field, f"a model id (provider/model or a catalog id) of 1 to {MAX_MODEL_REF} characters")
    return ref


def _graph(graph: str | None, root: Path) -> str:
    builtin = builtin_graph_names()
    if graph is None or graph in builtin:
        return graph or "coding-workflow"
    if not isinstance(graph, str) or not graph.endswith((".yaml", ".yml")):
        known = ", ".join(builtin)
        raise problem("graph", f"'{printable(graph)}' is neither a built-in graph ({known}) nor a .yaml graph file")
    relative_glob(graph, "graph")
    if not resolve(root / graph, "graph").is_relative_to(root):
        raise problem("graph", f"'{printable(graph)}' resolves outside the workspace")
    return graph


def inline_spec(request: Inline, root: Path) -> LoadedSpec:
    """The spec of an inline call, validated as a spec file is (its problems name `run_workflow`).
    Its file (in the workspace, so graph paths are relative to it) is never written."""
    data: dict[str, Any] = {
        "version": 1,
        "name": "mcp-inline",
        "goal": request.goal,
        "workspace": ".",
        "include": list(request.files),
        "graph": request.graph,
    }
    if request.models is not None:
        data["models"] = request.models
    document = Document(path=root / INLINE_FILE, data=data, origins={(key,): INLINE for key in data})
    spec = validate_document(document, Spec)
    loaded = LoadedSpec(spec, document)
    if not loaded.workspace.is_dir():
        raise problem("workspace", f"folder not found: {loaded.workspace}")
    return loaded
