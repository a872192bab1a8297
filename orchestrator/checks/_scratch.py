"""Scratch copies of the workspace, where checks run and patches are applied; the workspace itself
is only read.

The copy is of the workspace as it is now, uncommitted changes included: in a git repository the
files git knows or would add (`git ls-files --cached --others --exclude-standard`, so ignored
build output stays out), elsewhere every file but the folders the orchestrator never reads (.git,
.orchestrator, caches). A copy is used rather than a `git worktree` because `git worktree add`
writes into the repository's .git and checks out HEAD, not the working state. Heavy, ignored
environments a check may need (`.venv`, `venv`, `node_modules`) are linked, read-only in the
sandbox, rather than copied. One pristine copy is made per run; each check run gets its own copy
of it, removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

SHARED = (".venv", "venv", "node_modules")  # linked into each copy, never copied
NEVER_COPIED = frozenset({".git", ".orchestrator", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})


class Scratch:
    """The run's scratch folder: the pristine copy and the copies made from it."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace.resolve()
        self.root = Path(tempfile.mkdtemp(prefix="orchestrator-checks-"))
        self._pristine: Path | None = None
        self._lock = threading.Lock()
        self._count = 0

    @property
    def shared(self) -> list[Path]:
        return shared_paths(self.workspace)

    def pristine(self) -> Path:
        """The workspace copied once (thread-safe; called off the event loop)."""
        with self._lock:
            if self._pristine is None:
                target = self.root / "pristine"
                copy_workspace(self.workspace, target)
                self._pristine = target
            return self._pristine

    def copy(self, label: str) -> tuple[Path, Path]:
        """A fresh copy of the pristine one, and a private temporary folder beside it."""
        source = self.pristine()
        with self._lock:
            self._count += 1
            base = self.root / f"{self._count:03d}-{_slug(label)}"
        shutil.copytree(source, base / "ws", symlinks=True)
        (base / "tmp").mkdir()
        for shared in self.shared:
            link = base / "ws" / shared.name
            if not link.exists():
                link.symlink_to(shared)
        return base / "ws", base / "tmp"

    @staticmethod
    def remove(copy: Path) -> None:
        shutil.rmtree(copy.parent, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def shared_paths(workspace: Path) -> list[Path]:
    """The workspace's environments that copies link to instead of copying."""
    return [workspace / name for name in SHARED if (workspace / name).is_dir()]


def copy_workspace(workspace: Path, target: Path) -> None:
    target.mkdir(parents=True)
    for rel in _files(workspace):
        source = workspace / rel
        dest = target / rel
        if source.is_symlink():
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(os.readlink(source))
        elif source.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)
        elif source.is_dir():  # a git submodule
            shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=True)


def _files(workspace: Path) -> list[str]:
    listed = _git_files(workspace)
    if listed is not None:
        return [p for p in listed if not (set(Path(p).parts) & NEVER_COPIED) and Path(p).parts[0] not in SHARED]
    found = []
    for folder, dirs, names in os.walk(workspace):
        rel = Path(folder).relative_to(workspace)
        dirs[:] = [d for d in dirs if d not in NEVER_COPIED and not (rel == Path(".") and d in SHARED)]
        found += [(rel / name).as_posix() for name in names]
    return found


def _git_files(workspace: Path) -> list[str] | None:
    """The files git knows or would add under the workspace, or None outside a repository."""
    try:
        done = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=workspace,
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return sorted({p for p in done.stdout.decode("utf-8", "surrogateescape").split("\0") if p})


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:40] or "copy"


def copied_paths(workspace: Path) -> list[str]:
    """The files a scratch copy of `workspace` holds (relative POSIX paths, a git submodule as its
    folder): everything a check can read, whether the run's selection includes it or not."""
    return _files(workspace.resolve())
