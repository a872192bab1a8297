"""git for evals: read-only commands in the user's repository (no hook, no file-system monitor, no
external diff driver), scratch clones of a commit that leave the repository as it was, and
patches cut into one part per file (to drop the parts that touch the judge's files)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from orchestrator.checks import header_paths
from orchestrator.errors import SpecError

GIT_TIMEOUT_S = 300
SAFE = [
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.quotepath=false",
    "-c",
    "diff.external=",
    "-c",
    "color.ui=false",
    "-c",
    "core.hooksPath=/dev/null",
]
_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


def git(folder: Path, *args: str, check: bool = True) -> str:
    """`git ARGS` in `folder`: its output, or SpecError (exit 2) with git's reason."""
    env = {**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
    try:
        done = subprocess.run(
            ["git", *SAFE, *args],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise SpecError("git is not installed; an eval checks out commits with it") from None
    except subprocess.TimeoutExpired:
        raise SpecError(f"git {args[0]} in {folder} took longer than {GIT_TIMEOUT_S}s") from None
    except OSError as exc:
        raise SpecError(f"cannot run git in {folder}: {exc}") from None
    if check and done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SpecError(f"`git {args[0]}` in {folder} failed: {why[-1] if why else f'exit {done.returncode}'}")
    return done.stdout.decode("utf-8", "replace")


def commit_of(repo: Path, revision: str) -> str:
    """The full id of the commit `revision` names in `repo` (SpecError when there is none)."""
    if not (repo / ".git").exists():
        raise SpecError(f"{repo} is not a git repository")
    return git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}").strip()


def checkout(repo: Path, commit: str, target: Path) -> None:
    """A scratch clone of `repo` at `commit` in `target` (made again when it is not exactly that).
    The clone borrows the repository's objects (`--shared`): nothing is written into it."""
    if (target / ".git").exists():
        head = git(target, "rev-parse", "HEAD", check=False).strip()
        dirty = git(target, "status", "--porcelain", "--untracked-files=no", check=False).strip()
        if head == commit and not dirty:
            return
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    git(target.parent, "clone", "--quiet", "--shared", "--no-checkout", "--", str(repo), target.name)
    git(target, "checkout", "--quiet", "--detach", commit)


def split_sections(diff: str) -> list[str]:
    """A unified diff cut into one part per file: at each `diff --git`, or at a `--- ` header
    outside any hunk (git's and plain diffs alike); hunk bodies are counted, never searched."""
    sections: list[list[str]] = []
    current: list[str] = []
    old = new = 0
    seen_header = False
    for line in diff.splitlines(keepends=True):
        if old > 0 or new > 0:
            current.append(line)
            tag = line[:1]
            if tag in (" ", "\n", "\r"):
                old, new = old - 1, new - 1
            elif tag == "-":
                old -= 1
            elif tag == "+":
                new -= 1
            elif tag != "\\":
                old = new = 0
            continue
        hunk = _HUNK.match(line)
        if hunk:
            old = int(hunk.group(1)) if hunk.group(1) is not None else 1
            new = int(hunk.group(2)) if hunk.group(2) is not None else 1
            current.append(line)
            continue
        starts = line.startswith("diff --git ") or (line.startswith("--- ") and seen_header)
        if starts and current:
            sections.append(current)
            current, seen_header = [], False
        if line.startswith("--- "):
            seen_header = True
        current.append(line)
    if current:
        sections.append(current)
    return ["".join(part) for part in sections if any(p.strip() for p in part)]


def drop_files(diff: str, covers: Callable[[str], bool]) -> tuple[str, list[str]]:
    """The diff without the parts that touch a file `covers(path)` says is the judge's: what is
    left, and the files dropped."""
    kept: list[str] = []
    dropped: list[str] = []
    for section in split_sections(diff):
        paths = header_paths(section)
        judge = [path for path in paths if covers(path)]
        if judge:
            dropped += judge
        else:
            kept.append(section)
    return "".join(kept), sorted(set(dropped))
