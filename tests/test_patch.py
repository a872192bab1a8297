"""Checking proposed diffs with `git apply --check` without touching the workspace."""

from __future__ import annotations

import asyncio
import difflib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator.engine._patch import check_patch as check_patch_async
from orchestrator.engine._patch import touched_paths, unsafe_path
from orchestrator.engine.state import PatchCheck

pytestmark = pytest.mark.needs("" if shutil.which("git") else "git is not installed")

ORIGINAL = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"
FIXED = ORIGINAL.replace("return a - b\n\n", "return a + b\n\n", 1)


def unified(old: str, new: str, path: str = "x.py") -> str:
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{path}", f"b/{path}"))


def check_patch(workspace: Path, file: str, diff: str) -> PatchCheck:
    """The checker runs git as an asyncio subprocess; these tests call it from plain code."""
    return asyncio.run(check_patch_async(workspace, file, diff))


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def workspace(root: Path, *, init: bool, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in (files or {"x.py": ORIGINAL}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    if init:
        git(root, "init", "-q")
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(params=[False, True], ids=["plain", "git"])
def ws(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return workspace(tmp_path / "ws", init=request.param)


def test_correct_diff_is_valid_and_nothing_is_written(ws: Path) -> None:
    before = snapshot(ws)
    diff = unified(ORIGINAL, FIXED)
    result = check_patch(ws, "x.py", diff)
    assert isinstance(result, PatchCheck)
    assert result.valid, result.message
    assert result.file == "x.py"
    assert (ws / "x.py").read_text() == ORIGINAL
    assert snapshot(ws) == before
    assert result.model_dump() == {"file": "x.py", "valid": True, "message": result.message}


def test_diff_without_final_newline_is_still_checked(ws: Path) -> None:
    assert check_patch(ws, "x.py", unified(ORIGINAL, FIXED).rstrip("\n")).valid


def test_new_file_diff_is_valid(ws: Path) -> None:
    diff = "--- /dev/null\n+++ b/new_module.py\n@@ -0,0 +1,2 @@\n+def f():\n+    return 1\n"
    result = check_patch(ws, "new_module.py", diff)
    assert result.valid, result.message
    assert not (ws / "new_module.py").exists()


def test_wrong_context_is_invalid_with_gits_message(ws: Path) -> None:
    stale = ORIGINAL.replace("def sub", "def subtract")
    diff = unified(stale, stale.replace("return a - b\n\n", "return a + b\n\n", 1))
    result = check_patch(ws, "x.py", diff)
    assert not result.valid
    assert "error" in result.message
    assert "x.py" in result.message
    assert (ws / "x.py").read_text() == ORIGINAL


def test_diff_for_missing_file_is_invalid(ws: Path) -> None:
    result = check_patch(ws, "gone.py", unified(ORIGINAL, FIXED, "gone.py"))
    assert not result.valid
    assert "gone.py" in result.message


@pytest.mark.parametrize("text", ["", "not a diff at all", "Here is the fix:\n```python\nreturn a + b\n```\n"])
def test_non_diff_is_invalid(ws: Path, text: str) -> None:
    result = check_patch(ws, "x.py", text)
    assert not result.valid
    assert result.message


def test_hunk_without_headers_is_invalid(ws: Path) -> None:
    body = unified(ORIGINAL, FIXED).split("\n", 2)[2]  # drop the ---/+++ lines
    assert body.startswith("@@")
    assert not check_patch(ws, "x.py", body).valid


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("../outside.py", ".."),
        ("sub/../../outside.py", ".."),
        ("/etc/passwd", "absolute"),
        (".git/config", ".git"),
        (".git/hooks/pre-commit", ".git"),
    ],
)
def test_unsafe_paths_are_rejected_before_git_runs(
    ws: Path, monkeypatch: pytest.MonkeyPatch, path: str, fragment: str
) -> None:
    def no_git(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("git must not run for an unsafe path")

    monkeypatch.setattr(asyncio, "create_subprocess_exec", no_git)
    diff = f"--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-old\n+new\n"
    if path.startswith("/"):
        diff = f"--- {path}\n+++ {path}\n@@ -1 +1 @@\n-old\n+new\n"
    result = check_patch(ws, "x.py", diff)
    assert not result.valid
    assert "rejected" in result.message
    assert fragment in result.message


def test_one_unsafe_path_among_safe_ones_rejects_the_diff(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asyncio, "create_subprocess_exec", lambda *a, **k: pytest.fail("git ran"))
    diff = unified(ORIGINAL, FIXED) + "--- a/x.py\n+++ b/../escape.py\n@@ -1 +1 @@\n-a\n+b\n"
    assert not check_patch(ws, "x.py", diff).valid


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("x.py", None),
        ("src/pkg/mod.py", None),
        ("docs/.gitignore", None),
        ("a..b.py", None),
        ("../x.py", "leaves"),
        ("a/../../x.py", "leaves"),
        ("/abs.py", "absolute"),
        (".git/config", ".git"),
    ],
)
def test_unsafe_path(path: str, reason: str | None) -> None:
    found = unsafe_path(path)
    if reason is None:
        assert found is None
    else:
        assert found is not None and reason in found


def test_touched_paths_strip_prefixes_and_dev_null() -> None:
    diff = unified(ORIGINAL, FIXED, "pkg/x.py") + "--- /dev/null\n+++ b/new.py\n@@ -0,0 +1 @@\n+x\n"
    assert touched_paths(diff) == ["new.py", "pkg/x.py"]
    assert touched_paths("no headers here") == []


def test_workspace_inside_another_repository_checks_relative_to_workspace(tmp_path: Path) -> None:
    outer = workspace(tmp_path / "outer", init=True, files={"x.py": "OUTER = 1\n", "only_outer.py": "o = 1\n"})
    git(outer, "add", "-A")
    git(outer, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "init")
    ws = workspace(outer / "project", init=False)
    before = snapshot(outer)

    # a diff of the workspace's own x.py applies
    assert check_patch(ws, "x.py", unified(ORIGINAL, FIXED)).valid
    # a diff written against the outer repository's x.py does not
    assert not check_patch(ws, "x.py", unified("OUTER = 1\n", "OUTER = 2\n")).valid
    # a file that exists only at the outer root is not in the workspace
    assert not check_patch(ws, "only_outer.py", unified("o = 1\n", "o = 2\n", "only_outer.py")).valid
    # the same diff with the workspace's prefix does not reach into it either
    assert not check_patch(ws, "x.py", unified(ORIGINAL, FIXED, "project/x.py")).valid
    assert snapshot(outer) == before


def test_missing_git_is_reported(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(*args: Any, **kwargs: Any) -> None:
        raise FileNotFoundError("git")

    monkeypatch.setattr(asyncio, "create_subprocess_exec", missing)
    result = check_patch(ws, "x.py", unified(ORIGINAL, FIXED))
    assert not result.valid
    assert "git" in result.message
