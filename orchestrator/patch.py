"""Checking proposed diffs against the workspace without changing it.

A diff is valid when `git apply --check` accepts it in the workspace and every path it
touches stays inside the workspace (no absolute paths, no `..`, nothing under `.git/`, no
symlink that leads out).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

_HEADER = re.compile(r"^(?:---|\+\+\+) (?:[ab]/)?(\S+)", re.MULTILINE)


@dataclass(frozen=True)
class PatchCheck:
    file: str
    valid: bool
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "valid": self.valid, "message": self.message}


def touched_paths(diff: str) -> list[str]:
    return sorted({path for path in _HEADER.findall(diff) if path != "/dev/null"})


def unsafe_path(path: str) -> str | None:
    pure = PurePosixPath(path)
    if pure.is_absolute():
        return "absolute path"
    if ".." in pure.parts:
        return "path leaves the workspace"
    if pure.parts and pure.parts[0] == ".git":
        return "touches .git/"
    return None


def escapes(workspace: Path, path: str) -> bool:
    """Whether the path, with its symlinks followed, ends up outside the workspace."""
    root = workspace.resolve()
    return not (root / path).resolve().is_relative_to(root)


def check_patch(workspace: Path, file: str, diff: str) -> PatchCheck:
    """Validate a unified diff with `git apply --check`; nothing is written."""
    paths = touched_paths(diff)
    if not paths:
        return PatchCheck(file, False, "not a unified diff (no ---/+++ headers)")
    for path in paths:
        reason = unsafe_path(path) or ("a symlink leads out of the workspace" if escapes(workspace, path) else None)
        if reason:
            return PatchCheck(file, False, f"rejected: {path}: {reason}")
    if not diff.endswith("\n"):
        diff += "\n"
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(workspace.resolve().parent), "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["git", "apply", "--check", "--verbose", "-"],
            input=diff.encode("utf-8"),
            cwd=workspace,
            env=env,
            capture_output=True,
            timeout=30,
            check=False,
        )
    except FileNotFoundError:
        return PatchCheck(file, False, "git is not installed; cannot check the diff")
    except subprocess.TimeoutExpired:
        return PatchCheck(file, False, "git apply --check timed out")
    output = (done.stderr or done.stdout).decode("utf-8", "replace").strip()
    if done.returncode == 0:
        return PatchCheck(file, True, "applies cleanly (git apply --check)")
    lines = [line for line in output.splitlines() if line.startswith(("error", "fatal"))]
    return PatchCheck(file, False, "; ".join(lines[:3]) or output[:300] or "git apply --check failed")
