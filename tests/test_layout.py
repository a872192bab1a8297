"""The house: sub-packages in layer order (import-linter enforces the direction in `make check`),
no module-level import cycle, few top-level modules, examples and benchmarks on the public API
only, and behaviour unchanged (the recorded quickstart replays the same: recorded before the move
into layers, and again when agentic roles changed the prompts on purpose)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import orchestrator
from orchestrator.spec.kinds import OUTPUT_MODELS, answer_shape
from tests.process import comparable
from tests.process import orchestrator as cli

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "orchestrator"
REPLAY = Path(__file__).parent / "data" / "quickstart-replay"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path, modules: set[str]) -> set[str]:
    """The orchestrator modules a module imports when it is imported (module level, outside
    `if TYPE_CHECKING:`); `from pkg import sub` counts as importing `pkg.sub`."""
    tree = ast.parse(path.read_text())
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
                continue
            if isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    found.add(target if target in modules else base)

    visit(tree.body)
    return {m for m in found if m in modules and m != this}


def test_no_module_level_import_cycle() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(f) for f in files}
    graph = {module_name(f): runtime_imports(f, modules) for f in files}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            assert cycle is None, " -> ".join(cycle)
    assert graph["orchestrator.cli"] >= {"orchestrator.cli.run", "orchestrator.cli.inspect"}  # the scan sees imports


def test_the_package_shows_its_layers_and_has_few_top_level_modules() -> None:
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert packages == [
        "catalog", "checks", "cli", "diff", "engine", "mcp_tools", "models", "outputs", "policy", "providers",
        "runtime", "serve", "spec", "workflow",
    ]  # fmt: skip
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= 8, modules
    oversized = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py") if len(p.read_text().splitlines()) > 400]
    assert not oversized, oversized


def test_the_layer_contract_is_declared_in_layer_order() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    layers = re.findall(r'^  "(orchestrator[^"]*)",$', text.split("[tool.importlinter]")[1], re.M)
    assert (
        layers[0] == "orchestrator.cli | orchestrator.testing"
        and layers[-1] == "orchestrator.errors | orchestrator.log | orchestrator.formats"
    )
    order = [name.removeprefix("orchestrator.") for name in layers[1:]]
    assert order == [
        "serve", "runtime", "outputs", "workflow", "engine", "checks | orchestrator.mcp_tools", "providers", "models",
        "policy", "catalog", "spec", "diff", "workspace", "errors | orchestrator.log | orchestrator.formats",
    ]  # fmt: skip


def public_names_used(path: Path) -> list[str]:
    """`orchestrator` imports in a file that are not the public API (`orchestrator` itself, or
    the `orchestrator.testing` helpers)."""
    wrong = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("orchestrator"):
            if node.module == "orchestrator":
                wrong += [a.name for a in node.names if a.name not in orchestrator.__all__]
            elif node.module != "orchestrator.testing":
                wrong.append(node.module)
        elif isinstance(node, ast.Import):
            wrong += [a.name for a in node.names if a.name.startswith("orchestrator.")]
    return wrong


def test_examples_and_benchmarks_use_only_public_names() -> None:
    files = [*sorted((ROOT / "bench").glob("*.py")), *sorted((ROOT / "examples").rglob("*.py"))]
    assert len(files) > 5
    used = {str(f.relative_to(ROOT)): public_names_used(f) for f in files}
    assert {f: names for f, names in used.items() if names} == {}


# the answer shapes prompts carried before they were generated from the output models
WRITTEN_BY_HAND = {
    "plan": '{"subtasks": [{"id": "t1", "role": "ROLE", "instruction": "...", "files": ["PATH"]}]}',
    "findings": (
        '{"findings": [{"severity": "high", "file": "PATH", "line": 12, "title": "...", '
        '"detail": "...", "suggestion": "..."}]}'
    ),
    "patches": '{"patches": [{"file": "PATH", "diff": "--- a/PATH\\n+++ b/PATH\\n@@ ...", "rationale": "..."}]}',
    "diagnosis": (
        '{"root_cause": "...", "evidence": ["..."], '
        '"fix": {"file": "PATH", "diff": "--- a/PATH\\n+++ b/PATH\\n@@ ...", "rationale": "..."} or null}'
    ),
    "docs": '{"title": "...", "markdown": "..."}',
    "text": '{"text": "..."}',
    "aggregate": '{"summary": "...", "decisions": ["..."], "disagreements": ["..."], "next_steps": ["..."]}',
}


def test_answer_shapes_are_generated_from_the_output_models() -> None:
    assert set(OUTPUT_MODELS) == set(WRITTEN_BY_HAND)
    assert {kind: answer_shape(kind) for kind in OUTPUT_MODELS} == WRITTEN_BY_HAND


def test_the_recorded_quickstart_replays_to_the_same_result(tmp_path: Path) -> None:
    done = cli(
        "run", ROOT / "examples" / "quickstart" / "spec.yaml", "--replay", REPLAY / "rec", "--output-dir", tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    volatile = frozenset({"checkpoint", "workspace", "path", "roles"})  # and the paths of another checkout
    before = comparable(json.loads((REPLAY / "result.json").read_text()), volatile, drop_null=True)
    after = comparable(json.loads((tmp_path / "result.json").read_text()), volatile, drop_null=True)
    assert after == before
    assert len(before["subtasks"]) == 4 and before["aggregate"]["status"] == "ok"
