"""The environment probe of a Python project: before the baseline, the check's interpreter
imports each of the workspace's top-level packages (in the project's root or `src/`) in a
scratch copy, as a check would, and says where each came from. A package imported from anywhere
but the copy (a site-packages install, the original workspace, the orchestrator's own
environment) means the checks would judge other code than the patched one: every verdict is then
`inconclusive`, with the path and what to do."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.checks._interpreter import Interpreter
from orchestrator.checks._records import Environment, ImportedFrom
from orchestrator.checks._scratch import SHARED

MAX_PACKAGES = 12
PROBE_TIMEOUT_S = 60.0
MARK = "ORCHESTRATOR-PROBE:"
# folders with an __init__.py that are not the project's code
NOT_PACKAGES = frozenset({"tests", "test", "testing", "docs", "doc", "examples", "benchmarks", "scripts", "build"})

SCRIPT = """
import importlib, json, os, sys
here = os.path.realpath(os.getcwd())
sys.path.insert(0, here)
found = {}
for name in NAMES:
    try:
        module = importlib.import_module(name)
        where = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", []) or []), "")
        found[name] = {"path": os.path.realpath(where) if where else ""}
    except BaseException as exc:
        missing = isinstance(exc, ModuleNotFoundError) and exc.name == name
        found[name] = {"error": (type(exc).__name__ + ": " + str(exc))[:300], "missing": missing}
print(MARK + json.dumps({"here": here, "python": sys.executable, "version": sys.version.split()[0],
                         "packages": found}), flush=True)
"""


def top_packages(workspace: Path) -> list[str]:
    """The workspace's own top-level packages: folders with an __init__.py at its root or in src/."""
    found = []
    for folder in (workspace, workspace / "src"):
        try:
            children = sorted(folder.iterdir())
        except OSError:
            continue
        for child in children:
            name = child.name
            if name in NOT_PACKAGES or name.startswith((".", "test")) or not name.isidentifier():
                continue
            if child.is_dir() and not child.is_symlink() and (child / "__init__.py").is_file():
                found.append(name)
    return sorted(set(found))[:MAX_PACKAGES]


def probe_argv(python: Path, packages: list[str]) -> list[str]:
    body = SCRIPT.replace("NAMES", json.dumps(packages)).replace("MARK", json.dumps(MARK))
    return [str(python), "-c", body]


def read_probe(
    output: str, exit_code: int | None, interpreter: Interpreter, packages: list[str], sandboxed: bool
) -> Environment:
    """The environment the probe saw, and why it makes the checks inconclusive (if it does)."""
    environment = Environment(interpreter=str(interpreter.python or ""), source=interpreter.source)
    line = next((x for x in output.splitlines() if x.startswith(MARK)), None)
    if line is None:
        tail = " ".join(output.strip().splitlines()[-3:])[:400]
        why = f"exit {exit_code}" if exit_code is not None else "it did not finish"
        environment.problem = f"the environment probe failed ({why}): {tail or 'no output'}"
        return environment
    try:
        data = json.loads(line[len(MARK) :])
        here = str(data["here"])
        environment.interpreter = str(data.get("python") or environment.interpreter)
        environment.version = str(data.get("version") or "")
        results = dict(data["packages"])
    except (ValueError, KeyError, TypeError) as exc:
        environment.problem = f"the environment probe's answer could not be read: {exc}"
        return environment
    elsewhere = []
    for name in packages:
        result = results.get(name) or {}
        path = str(result.get("path") or "")
        inside = _in_copy(path, here)
        entry = ImportedFrom(package=name, path=path, in_copy=inside, error=str(result.get("error") or ""))
        environment.packages.append(entry)
        if path and not inside:
            elsewhere.append(entry)
        elif entry.error and not result.get("missing"):
            environment.notes.append(f"{name} does not import outside a check: {entry.error}")
    if elsewhere:
        environment.problem = _elsewhere(elsewhere[0], environment, sandboxed)
    return environment


def _in_copy(path: str, here: str) -> bool:
    """Inside the copy, and not in an environment bound into it (the workspace's .venv)."""
    root = here.rstrip("/") + "/"
    if not path.startswith(root):
        return False
    first = path[len(root) :].split("/", 1)[0]
    return first not in SHARED and "/site-packages/" not in path and "/dist-packages/" not in path


def _elsewhere(entry: ImportedFrom, environment: Environment, sandboxed: bool) -> str:
    said = f"{entry.package} was imported from {entry.path}, not from the patched copy"
    python = f"{environment.interpreter} ({environment.source})"
    if not sandboxed:
        return (
            f"{said}: without a sandbox the copy cannot stand at the workspace's own path, where the "
            f"environment of {python} finds the package; install bubblewrap"
        )
    return (
        f"{said}: the interpreter the checks run, {python}, has its own copy installed. Install the "
        "project in editable mode there (pip install -e .), give the workspace its own .venv, activate "
        "the project's environment (VIRTUAL_ENV), or name the interpreter in the check's command"
    )
