"""Patches on scratch copies: which paths a diff touches (as its headers say and as git reads
it), why it must be rejected (a path outside the workspace, under .git, through a symlink that
leads out, or a symlink it creates), and applying it with `git apply`. git runs outside any
repository (GIT_CEILING_DIRECTORIES), as a "better patch"."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

GIT_TIMEOUT_S = 30
_HEADER = re.compile(r"^(?:--- |\+\+\+ |rename from |rename to |copy from |copy to )(.+?)\s*$", re.MULTILINE)
_DIFF_GIT = re.compile(r"^diff --git (\S+) (\S+)\s*$", re.MULTILINE)
_SYMLINK = re.compile(r"^(?:new file mode|new mode) 120000\s*$", re.MULTILINE)


@dataclass
class Git:
    code: int | None
    output: str


async def git(args: list[str], cwd: Path, stdin: str = "") -> Git:
    """`git ARGS` in `cwd`, never inside an enclosing repository."""
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(cwd.resolve().parent), "LC_ALL": "C"}
    try:
        process = await asyncio.create_subprocess_exec(
            "git",
            *args,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        return Git(None, "git is not installed")
    try:
        async with asyncio.timeout(GIT_TIMEOUT_S):
            out, err = await process.communicate(stdin.encode("utf-8"))
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return Git(None, f"git {args[0]} timed out")
    text = (out.decode("utf-8", "replace") + err.decode("utf-8", "replace")).strip()
    return Git(process.returncode, text)


def header_paths(diff: str) -> list[str]:
    """Every path the diff's headers name (`a/`/`b/` prefixes removed, /dev/null left out)."""
    found = [_unquote(p) for p in _HEADER.findall(diff)]
    for left, right in _DIFF_GIT.findall(diff):
        found += [_unquote(left), _unquote(right)]
    paths = []
    for path in found:
        path = path.split("\t")[0]
        if path == "/dev/null":
            continue
        paths.append(path[2:] if path[:2] in ("a/", "b/") else path)
    return sorted(set(paths))


def _unquote(path: str) -> str:
    """git quotes unusual names C-style: "a/sp\\303\\251cial"."""
    if len(path) >= 2 and path[0] == path[-1] == '"':
        raw = path[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
        return raw.encode("latin-1", "replace").decode("utf-8", "replace")
    return path


def unsafe_path(path: str) -> str | None:
    pure = PurePosixPath(path.replace("\\", "/"))
    if pure.is_absolute() or re.match(r"^[A-Za-z]:", path):
        return "absolute path"
    if ".." in pure.parts:
        return "path leaves the workspace"
    if ".git" in pure.parts:
        return "touches .git/"
    return None


def escapes(root: Path, path: str) -> bool:
    """Whether the path, with its symlinks followed, ends up outside `root`."""
    base = root.resolve()
    return not (base / path).resolve().is_relative_to(base)


async def rejection(diff: str, workspace: Path, scratch: Path) -> tuple[str | None, list[str]]:
    """Why the diff must be rejected (None when it may be applied), and the paths it touches."""
    paths = header_paths(diff)
    read = await git(["apply", "--numstat", "--summary", "-"], scratch, _ended(diff))
    if read.code == 0:
        for line in read.output.splitlines():
            parts = line.split("\t")
            if len(parts) == 3:
                paths.append(parts[2].strip())
        if "mode 120000" in read.output:
            return "the patch creates a symlink", sorted(set(paths))
    if not paths:
        return "not a unified diff (no ---/+++ headers)", []
    if _SYMLINK.search(diff):
        return "the patch creates a symlink", sorted(set(paths))
    for path in sorted(set(paths)):
        reason = unsafe_path(path) or ("a symlink leads out of the workspace" if escapes(workspace, path) else None)
        if reason:
            return f"{path}: {reason}", sorted(set(paths))
    return None, sorted(set(paths))


async def apply_patch(diff: str, copy: Path) -> str | None:
    """Apply a diff to a scratch copy; None when it applied, else git's reason."""
    done = await git(["apply", "--whitespace=nowarn", "-"], copy, _ended(diff))
    if done.code == 0:
        return None
    lines = [line for line in done.output.splitlines() if line.startswith(("error", "fatal"))]
    return "; ".join(lines[:3]) or done.output[:300] or "git apply failed"


def _ended(diff: str) -> str:
    return diff if diff.endswith("\n") else diff + "\n"
