"""The Python a check runs, found as a user would expect: the workspace's own environment
(`.venv`, then `venv`), else the caller's active `VIRTUAL_ENV`, else the first `python` on PATH.
The orchestrator's own virtual environment is never found on PATH (its `click` or `httpx` would
shadow a project of that name); a check that names an interpreter by its path runs that one.

The environment found goes first on the check's PATH (its `python`, `pytest` and scripts win)
and is the check's VIRTUAL_ENV; it and its base installation (pyvenv.cfg's `home`) stay readable
in the sandbox, so a virtual environment made from a pyenv or uv Python still starts there. A
workspace's `.venv` that links to `/`, to the workspace or above it is not an environment.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.checks._scratch import environment_folder

WORKSPACE_ENVIRONMENTS = (".venv", "venv")


@dataclass(frozen=True)
class Interpreter:
    """The environment checks run with: `python` as they find it, where it was found, and the
    PATH and VIRTUAL_ENV they get."""

    python: Path | None
    source: str
    path: str
    prefix: Path | None = None
    readable: tuple[Path, ...] = field(default_factory=tuple)

    def environment(self) -> dict[str, str | None]:
        """Variables to set in a check's environment (None: remove it)."""
        return {"PATH": self.path, "VIRTUAL_ENV": str(self.prefix) if self.prefix is not None else None}


def own_environment() -> Path | None:
    """The orchestrator's own virtual environment (None when it runs from a base installation,
    such as CI's setup-python, which is then also the project's)."""
    if sys.prefix == sys.base_prefix:
        return None
    return Path(sys.prefix).resolve()


def find_interpreter(workspace: Path, environ: Mapping[str, str] | None = None) -> Interpreter:
    """The interpreter checks of `workspace` run, from the caller's environment `environ`."""
    environ = os.environ if environ is None else environ
    own = own_environment()
    entries = [p for p in environ.get("PATH", "").split(os.pathsep) if p]
    chosen, source = _environment(workspace, environ)
    if chosen is not None and own is not None and chosen.resolve() == own:
        own = None  # chosen on purpose: it stays on PATH
    kept = [p for p in entries if own is None or not _inside(Path(p), own)]
    if chosen is not None:
        bin_dir = str(chosen / "bin")
        path = os.pathsep.join([bin_dir, *(p for p in kept if p != bin_dir)])
        python = chosen / "bin" / "python"
        return Interpreter(python, source, path, chosen, tuple(_readable(chosen)))
    path = os.pathsep.join(kept)
    found = shutil.which("python", path=path) or shutil.which("python3", path=path)
    return Interpreter(Path(found) if found else None, "PATH", path)


def _environment(workspace: Path, environ: Mapping[str, str]) -> tuple[Path | None, str]:
    for name in WORKSPACE_ENVIRONMENTS:
        if environment_folder(workspace, workspace / name) and _is_environment(workspace / name):
            return workspace / name, f"the workspace's {name}"
    active = environ.get("VIRTUAL_ENV", "")
    if active and _is_environment(Path(active)):
        return Path(active), "VIRTUAL_ENV"
    return None, "PATH"


def _is_environment(folder: Path) -> bool:
    """A Python environment: its own `bin/python` (never `/` or a system folder's `bin`)."""
    try:
        if len(folder.resolve().parts) < 3:
            return False
    except (OSError, RuntimeError):
        return False
    return (folder / "bin" / "python").exists() or (folder / "bin" / "python3").exists()


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root)
    except OSError:
        return False


def _readable(prefix: Path) -> list[Path]:
    """What a sandboxed check must read to start the environment's Python: the environment (the
    sandbox adds the installation it was made from, its pyvenv.cfg's `home`)."""
    return sorted({prefix, prefix.resolve()})
