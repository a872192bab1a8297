"""Running git for a diff scope: read-only commands in the workspace's repository, with no
external diff driver, no text conversion and no file-system monitor (nothing the repository's
files could make git run), bounded in time and in what is read back."""

from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import SpecError

GIT_TIMEOUT_S = 60
SAFE = ["-c", "core.fsmonitor=false", "-c", "core.quotepath=false", "-c", "diff.external=", "-c", "color.ui=false"]


@dataclass(frozen=True)
class Output:
    data: bytes
    truncated: bool


def run_git(folder: Path, args: list[str], limit: int = 1_000_000) -> Output:
    """`git ARGS` in `folder`; at most `limit` bytes of its output are read (the rest is cut off and
    git stopped). Raises SpecError when git is missing, fails or takes too long."""
    env = {**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
    try:
        process = subprocess.Popen(
            ["git", *SAFE, *args],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except FileNotFoundError:
        raise SpecError("diff_base: git is not installed; it is needed to review what changed") from None
    timer = threading.Timer(GIT_TIMEOUT_S, process.kill)
    timer.start()
    try:
        assert process.stdout is not None and process.stderr is not None
        data = process.stdout.read(limit + 1)
        truncated = len(data) > limit
        if truncated:
            process.kill()
        error = process.stderr.read(4000)
        code = process.wait()
    finally:
        timer.cancel()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    if not truncated and code != 0:
        why = error.decode("utf-8", "replace").strip().splitlines()
        what = why[-1] if why else f"exit {code}"
        raise SpecError(f"diff_base: `git {args[0]}` failed: {what}")
    return Output(data[:limit], truncated)


def git_text(folder: Path, args: list[str]) -> str:
    return run_git(folder, args).data.decode("utf-8", "replace").strip()


def resolve(folder: Path, revision: str) -> str | None:
    """The commit a revision names, or None when the repository has no such revision."""
    try:
        return git_text(folder, ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}"])
    except SpecError:
        return None
