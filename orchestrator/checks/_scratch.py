"""Scratch copies of the workspace, where checks run and patches are applied; the workspace itself
is only read.

The copy is of the workspace as it is now, uncommitted changes included: in a git repository the
files git knows or would add (`git ls-files --cached --others --exclude-standard`, so ignored
build output stays out), elsewhere every file but the folders the orchestrator never reads (.git,
.orchestrator, caches). A copy is used rather than a `git worktree` because `git worktree add`
writes into the repository's .git and checks out HEAD, not the working state. Heavy, ignored
environments a check may need (`.venv`, `venv`, `node_modules`) are linked (the sandbox binds
them read-only at their own path instead) rather than copied. The files git ignores that the
project needs (a generated `_version.py`, build outputs) are added to the copy (`_ignored`). One
pristine copy is made per run; each check run gets its own copy of it, removed afterwards.

Every path removes them: the end of a run or a `verify` (a SIGTERM too, which stops either like
Ctrl-C), and for a process that could not (SIGKILL, a crash) the next start of a run, a resume or a
verify, or `orchestrator gc`: each scratch folder names its owner process (`_owner`), and one
whose owner is gone is a leftover.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from orchestrator.checks._ignored import Overlay, ignored_entries, ls_files, overlay_ignored, plan_ignored
from orchestrator.checks._limits import CGROUP, PidsGroup, stale_groups
from orchestrator.checks._owner import owner_alive, owner_token

PREFIX = "orchestrator-checks-"
OWNER = ".owner"  # in a scratch folder: the token of the process that made it
CLOSE_TRIES = 20
SHARED = (".venv", "venv", "node_modules")  # linked into each copy, never copied
NEVER_COPIED = frozenset({".git", ".orchestrator", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})


class Scratch:
    """The run's scratch folder: the pristine copy and the copies made from it."""

    def __init__(self, workspace: Path, link_shared: bool = True) -> None:
        self.workspace = workspace.resolve()
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        (self.root / OWNER).write_text(owner_token(), encoding="ascii")
        # a sandbox binds the shared environments at their own path: no link in its copies
        self.link_shared = link_shared
        self.overlay = Overlay()
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
                self.overlay = copy_workspace(self.workspace, target)
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
        for shared in self.shared if self.link_shared else []:
            link = base / "ws" / shared.name
            if not link.exists():
                link.symlink_to(shared)
        return base / "ws", base / "tmp"

    @staticmethod
    def remove(copy: Path) -> None:
        shutil.rmtree(copy.parent, ignore_errors=True)

    def close(self) -> None:
        """Remove the folder; what a dying check still writes into may outlive a few tries, and
        keeps its owner's mark so that it is a leftover once this process has ended."""
        for _ in range(CLOSE_TRIES):
            shutil.rmtree(self.root, ignore_errors=True)
            if not self.root.exists():
                return
            time.sleep(0.1)
        with contextlib.suppress(OSError):
            (self.root / OWNER).write_text(owner_token(), encoding="ascii")


def leftovers() -> list[Path]:
    """What killed processes left behind: their scratch folders (in this process's temporary
    folder) and their checks' pids cgroups."""
    found = []
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            token = (folder / OWNER).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError):
            continue  # being made, or not ours to read: never taken for a leftover
        if not owner_alive(token):
            found.append(folder)
    return found + stale_groups()


def remove_leftovers() -> list[Path]:
    """Remove what `leftovers` finds; the paths removed."""
    removed = []
    for path in leftovers():
        if path.is_relative_to(CGROUP):
            PidsGroup(path).remove(kill=True)
        else:
            shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            removed.append(path)
    return removed


def shared_paths(workspace: Path) -> list[Path]:
    """The workspace's environments that copies link to instead of copying (those that are what
    they say: see `environment_folder`)."""
    return [workspace / name for name in SHARED if environment_folder(workspace, workspace / name)]


def environment_folder(workspace: Path, path: Path) -> bool:
    """Whether `path`, a workspace's `.venv`, `venv` or `node_modules`, may be bound into the
    sandbox: a folder of the workspace, or a link to a Python environment elsewhere (a
    `pyvenv.cfg` there), never to `/`, the workspace or a folder holding it. A pull request's
    `.venv -> /` or `-> ..` would otherwise show the host, or the original workspace, to a check."""
    try:
        if not path.is_dir():
            return False
        target, root = path.resolve(), workspace.resolve()
    except (OSError, RuntimeError):
        return False
    if target.is_relative_to(root) and target != root:
        return True
    if root.is_relative_to(target) or len(target.parts) < 3:
        return False
    return path.name != "node_modules" and (target / "pyvenv.cfg").is_file()


def copy_workspace(workspace: Path, target: Path) -> Overlay:
    """Copy the workspace's files (and, in a repository, the ignored ones it needs) to `target`."""
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
    ignored = ignored_entries(workspace)
    return overlay_ignored(workspace, target, ignored) if ignored is not None else Overlay()


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
    return ls_files(workspace, "--cached", "--others", "--exclude-standard")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:40] or "copy"


def copied_paths(workspace: Path) -> list[str]:
    """The files a scratch copy of `workspace` holds (relative POSIX paths, a git submodule as its
    folder), the ignored ones it takes included: everything a check can read, whether the run's
    selection includes it or not."""
    root = workspace.resolve()
    ignored = ignored_entries(root)
    taken = plan_ignored(root, ignored)[0] if ignored is not None else []
    return sorted({*_files(root), *taken})
