"""Files git ignores that a project needs to run: a generated `_version.py` (hatch-vcs,
setuptools-scm), build outputs, compiled extensions, `*.egg-info`. They are copied into the
scratch copy after the files git knows, smallest first, up to a bound (MAX_BYTES, MAX_FILES) that
is reported when it is hit. Left out: caches, virtual environments (any folder with a
`pyvenv.cfg`) and dependency folders such as `node_modules` (checks read the workspace's own
through the sandbox), and files that hold secrets by convention (`.env`, keys)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.workspace import glob_match

MAX_BYTES = 64 * 1024 * 1024
MAX_FILES = 10_000
MAX_SEEN = 100_000  # entries looked at in ignored folders before giving up on the rest
LEFT_OUT = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".orchestrator",
        ".venv",
        "venv",
        "node_modules",
        "bower_components",
        "__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".hypothesis",
        ".tox",
        ".nox",
        ".cache",
        ".ipynb_checkpoints",
        "htmlcov",
    }
)
SECRET_NAMES = (".env", ".env.*", "*.pem", "*.key", "*.p12", "*.pfx", "id_rsa*", "id_ed25519*", ".netrc", ".npmrc")


@dataclass
class Overlay:
    """What of the ignored files went into the copy."""

    files: int = 0
    bytes: int = 0
    left_out: list[str] = field(default_factory=list)
    bound: str = ""


def ls_files(workspace: Path, *options: str) -> list[str] | None:
    """`git ls-files -z OPTIONS` under the workspace, sorted, or None outside a repository."""
    try:
        done = subprocess.run(
            ["git", "ls-files", "-z", *options], cwd=workspace, capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return sorted({p for p in done.stdout.decode("utf-8", "surrogateescape").split("\0") if p})


def ignored_entries(workspace: Path) -> list[str] | None:
    """What git ignores under the workspace (a folder as `name/`), None outside a repository."""
    return ls_files(workspace, "--others", "--ignored", "--exclude-standard", "--directory")


def plan_ignored(workspace: Path, entries: list[str]) -> tuple[list[str], Overlay]:
    """The ignored files of `entries` a copy takes (smallest first, within the bound), and the
    report of what it leaves out (its counts are those of the files taken)."""
    overlay = Overlay()
    found: list[tuple[int, str]] = []
    seen = 0
    for entry in entries:
        if seen > MAX_SEEN:
            break
        rel = entry.rstrip("/")
        if _left_out(workspace / rel):
            overlay.left_out.append(rel + "/" if entry.endswith("/") else rel)
            continue
        if not entry.endswith("/"):
            found += _sized(workspace, rel)
            continue
        for folder, dirs, names in os.walk(workspace / rel):
            here = Path(folder)
            for name in list(dirs):
                if _left_out(here / name):
                    overlay.left_out.append((here / name).relative_to(workspace).as_posix() + "/")
                    dirs.remove(name)
            for name in names:
                found += _sized(workspace, (here / name).relative_to(workspace).as_posix())
            seen += len(names) + len(dirs)
            if seen > MAX_SEEN:
                overlay.bound = f"more than {MAX_SEEN} entries in ignored folders; the rest were not looked at"
                break
    found.sort()
    taken: list[str] = []
    for size, rel in found:
        if len(taken) >= MAX_FILES or overlay.bytes + size > MAX_BYTES:
            break
        taken.append(rel)
        overlay.bytes += size
    overlay.files = len(taken)
    if len(taken) < len(found):
        rest = found[len(taken) :]
        largest = ", ".join(rel for _, rel in sorted(rest, reverse=True)[:3])
        overlay.bound = (
            f"{len(rest)} ignored files ({sum(s for s, _ in rest) // 1024} KiB) were not copied: the copy takes at "
            f"most {MAX_FILES} ignored files and {MAX_BYTES // (1024 * 1024)} MiB (largest left: {largest})"
        )
    overlay.left_out = sorted(set(overlay.left_out))
    return taken, overlay


def overlay_ignored(workspace: Path, target: Path, entries: list[str]) -> Overlay:
    """Copy the ignored files of `entries` into `target`, smallest first, within the bound."""
    taken, overlay = plan_ignored(workspace, entries)
    for rel in taken:
        _copy(workspace / rel, target / rel)
    return overlay


def _left_out(path: Path) -> bool:
    name = path.name
    if path.is_dir() and not path.is_symlink():
        return name in LEFT_OUT or (path / "pyvenv.cfg").exists()
    return any(glob_match(name, pattern) for pattern in SECRET_NAMES)


def _sized(workspace: Path, rel: str) -> list[tuple[int, str]]:
    """(size, path) of an ignored file that may be copied: a regular file or a symlink that
    stays in the workspace; not a secret by its name."""
    path = workspace / rel
    if any(glob_match(path.name, pattern) for pattern in SECRET_NAMES):
        return []
    try:
        if path.is_symlink():
            inside = path.resolve().is_relative_to(workspace.resolve())
            return [(0, rel)] if inside else []
        return [(path.stat().st_size, rel)] if path.is_file() else []
    except OSError:
        return []


def _copy(source: Path, dest: Path) -> bool:
    if dest.exists() or dest.is_symlink():
        return False  # git knows a file there (or a folder of that name): the copy keeps it
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            dest.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, dest)
    except OSError:
        return False
    return True
