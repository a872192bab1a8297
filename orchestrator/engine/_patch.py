"""Checking proposed diffs against the workspace without changing it.

A diff is valid when `git apply --check` accepts it in the workspace and every path it
touches stays inside the workspace (no absolute paths, no `..`, nothing under `.git/`, no
symlink that leads out: the same rules as the verifier's, in `orchestrator.checks`). git runs as
an asyncio subprocess: checking never blocks the event loop.
"""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator.checks import escapes, git, unsafe_path
from orchestrator.engine.state import PatchCheck

__all__ = ["check_patch", "escapes", "touched_paths", "unsafe_path"]

_HEADER = re.compile(r"^(?:---|\+\+\+) (?:[ab]/)?(\S+)", re.MULTILINE)
_SYMLINK = re.compile(r"^(?:new file mode|new mode|old mode|deleted file mode) 120000\b", re.MULTILINE)


def touched_paths(diff: str) -> list[str]:
    return sorted({path for path in _HEADER.findall(diff) if path != "/dev/null"})


async def check_patch(workspace: Path, file: str, diff: str) -> PatchCheck:
    """Validate a unified diff with `git apply --check`; nothing is written."""
    paths = touched_paths(diff)
    if not paths:
        return PatchCheck(file=file, valid=False, message="not a unified diff (no ---/+++ headers)")
    for path in paths:
        reason = unsafe_path(path) or ("a symlink leads out of the workspace" if escapes(workspace, path) else None)
        if reason:
            return PatchCheck(file=file, valid=False, message=f"rejected: {path}: {reason}")
    if _SYMLINK.search(diff):  # a patch that makes a symlink can point it anywhere: never valid
        return PatchCheck(file=file, valid=False, message="rejected: the patch creates or changes a symlink")
    if not diff.endswith("\n"):
        diff += "\n"
    done = await git(["apply", "--check", "--verbose", "-"], workspace, diff)
    if done.code is None:  # git is missing, or timed out
        return PatchCheck(file=file, valid=False, message=f"{done.output}; cannot check the diff")
    if done.code == 0:
        return PatchCheck(file=file, valid=True, message="applies cleanly (git apply --check)")
    lines = [line for line in done.output.splitlines() if line.startswith(("error", "fatal"))]
    message = "; ".join(lines[:3]) or done.output[:300] or "git apply --check failed"
    return PatchCheck(file=file, valid=False, message=message)
