"""Checking proposed diffs against the workspace without changing it.

A diff is valid when `git apply --check` accepts it in the workspace and every path it
touches stays inside the workspace (no absolute paths, no `..`, nothing under `.git/`, no
symlink that leads out). git runs as an asyncio subprocess: checking never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from pathlib import Path, PurePosixPath

from orchestrator.engine.state import PatchCheck

_HEADER = re.compile(r"^(?:---|\+\+\+) (?:[ab]/)?(\S+)", re.MULTILINE)
_SYMLINK = re.compile(r"^(?:new file mode|new mode|old mode|deleted file mode) 120000\b", re.MULTILINE)
GIT_TIMEOUT_S = 30


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
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(workspace.resolve().parent), "LC_ALL": "C"}
    try:
        process = await asyncio.create_subprocess_exec(
            "git",
            "apply",
            "--check",
            "--verbose",
            "-",
            cwd=workspace,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        return PatchCheck(file=file, valid=False, message="git is not installed; cannot check the diff")
    try:
        async with asyncio.timeout(GIT_TIMEOUT_S):
            stdout, stderr = await process.communicate(diff.encode("utf-8"))
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return PatchCheck(file=file, valid=False, message="git apply --check timed out")
    output = (stderr or stdout).decode("utf-8", "replace").strip()
    if process.returncode == 0:
        return PatchCheck(file=file, valid=True, message="applies cleanly (git apply --check)")
    lines = [line for line in output.splitlines() if line.startswith(("error", "fatal"))]
    message = "; ".join(lines[:3]) or output[:300] or "git apply --check failed"
    return PatchCheck(file=file, valid=False, message=message)
