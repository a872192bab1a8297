"""A real git repository for the pull-request review tests: a base branch `main` and a branch
`feature` that adds a function with a bug (a new hunk of calc.py), renames notes/old_name.md,
deletes legacy.py and adds a binary file. The project's own test (test_mean) fails at the head
of `feature` and passes with the right fix."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from orchestrator.checks import unified_diff

CALC_BASE = '''"""Small arithmetic helpers."""


def add(a, b):
    return a + b


def scale(values, factor):
    return [value * factor for value in values]


def clamp(value, low, high):
    return max(low, min(value, high))
'''
BUG = "    return sum(values) / len(values) - 1\n"
CALC_HEAD = CALC_BASE + "\n\ndef mean(values):\n" + BUG
BUG_LINE = 17  # `return sum(values) / len(values) - 1`, a line the pull request adds
ADD_LINE = 5  # `return a + b`, a line the pull request does not touch (outside every hunk)
RIGHT = "    return sum(values) / len(values)\n"
WRONG = "    return sum(values) / (len(values) - 1)\n"
TEST = """from calc import add, mean


def test_add():
    assert add(2, 3) == 5


def test_mean():
    assert mean([1, 2, 3]) == 2
"""
NOTES = "# Notes\n\n" + "".join(f"- note {i}\n" for i in range(1, 12))
LEGACY = "def old():\n    return 1\n"
PNG = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(64))

RIGHT_FIX = unified_diff("calc.py", CALC_HEAD, CALC_HEAD.replace(BUG, RIGHT))
WRONG_FIX = unified_diff("calc.py", CALC_HEAD, CALC_HEAD.replace(BUG, WRONG))

SPEC = """
version: 1
name: pr-review
goal: Review the pull request.
workspace: .
include: ["**/*.py", "**/*.md", "**/*.png"]
providers: {fake: {kind: fake}}
tasks:
  - {id: review, role: architecture_review, instruction: Review what the pull request changes.}
  - {id: fix, role: debug, instruction: Find why test_mean fails and fix it.}
  - {id: tidy, role: refactor, instruction: Make mean simpler.}
models:
  planner: fake/planner
  architecture_review: fake/reviewer
  debug: fake/debugger
  refactor: fake/refactorer
checks:
  tests: {run: "python -m pytest -q -p no:cacheprovider", timeout_s: 120}
verify: {checks: [tests], reflections: 0, sandbox: required}
fail_on: high
"""


@dataclass
class Repo:
    root: Path
    spec: Path
    base: str  # main's commit
    head: str  # feature's commit (HEAD)


def git(root: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    done = subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def make_repo(root: Path, spec: str = SPEC) -> Repo:
    """main, then feature checked out (the pull request's head)."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    files = {"calc.py": CALC_BASE, "tests/test_calc.py": TEST, "notes/old_name.md": NOTES, "legacy.py": LEGACY}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / ".gitignore").write_text("out/\n__pycache__/\n")
    (root / "review.yaml").write_text(spec.lstrip())
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    base = git(root, "rev-parse", "HEAD")
    git(root, "checkout", "-q", "-b", "feature")
    (root / "calc.py").write_text(CALC_HEAD)
    git(root, "mv", "notes/old_name.md", "notes/new_name.md")
    git(root, "rm", "-q", "legacy.py")
    (root / "logo.png").write_bytes(PNG)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "add mean; rename the notes; drop legacy")
    return Repo(root, root / "review.yaml", base, git(root, "rev-parse", "HEAD"))


def findings_answer() -> str:
    """The reviewer: the bug on a line the pull request adds, and a finding on a line it does not touch."""
    return json.dumps(
        {
            "findings": [
                {
                    "severity": "high",
                    "file": "calc.py",
                    "line": BUG_LINE,
                    "title": "mean is off by one",
                    "detail": "mean subtracts 1 from the average; @octocat <img src=x onerror=alert(1)>",
                    "suggestion": "Return sum(values) / len(values).",
                },
                {
                    "severity": "medium",
                    "file": "calc.py",
                    "line": ADD_LINE,
                    "title": "add accepts anything",
                    "detail": "add does not check its arguments.",
                    "suggestion": "Add type hints.",
                },
            ]
        }
    )


def diagnosis_answer(diff: str = RIGHT_FIX) -> str:
    fix = {"file": "calc.py", "diff": diff, "rationale": "divide the sum by the count, nothing else"}
    return json.dumps({"root_cause": "mean subtracts one", "evidence": [f"calc.py:{BUG_LINE}"], "fix": fix})


def patches_answer(diff: str = WRONG_FIX) -> str:
    return json.dumps({"patches": [{"file": "calc.py", "diff": diff, "rationale": "a simpler mean"}]})
