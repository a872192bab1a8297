"""Workspace files: globbing, collection (what is read, what is skipped and why) and packing
into a token budget (never over budget, never silently cut)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.engine._packing import BLOCK_SEPARATOR, pack_files, render_file
from orchestrator.engine._relevance import PackItem
from orchestrator.workspace import MAX_FILE_BYTES, FileSet, SourceFile, collect_files, glob_match


def estimate(text: str) -> int:
    return len(text) // 3 + 1


def make_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def paths(fileset: FileSet) -> list[str]:
    return [f.path for f in fileset.files]


def skipped(fileset: FileSet) -> dict[str, str]:
    return dict(fileset.skipped)


# ---------------------------------------------------------------- glob_match


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        ("a.py", "**/*.py", True),
        ("a/b/c.py", "**/*.py", True),
        ("a/b/c.pyc", "**/*.py", False),
        ("a.txt", "**/*.py", False),
        ("src/a.py", "src/*.py", True),
        ("src/a/b.py", "src/*.py", False),
        ("a.py", "src/*.py", False),
        ("src/a/b.py", "src/**/*.py", True),
        ("src/a.py", "src/**/*.py", True),
        ("src/a/b/c.txt", "src/**", True),
        ("other/src/a.py", "src/**", False),
        ("a.py", "?.py", True),
        ("ab.py", "?.py", False),
        ("a/b.py", "?/b.py", True),
        ("/.py", "?.py", False),
        ("a1.py", "a?.py", True),
        ("x/migrations/0001.py", "**/migrations/**", True),
        ("migrations/0001.py", "**/migrations/**", True),
        ("a.py", "./a.py", True),
        ("a+b.py", "a+b.py", True),
        ("aab.py", "a+b.py", False),
        ("axpy", "a.py", False),
    ],
)
def test_glob_match(path: str, pattern: str, expected: bool) -> None:
    assert glob_match(path, pattern) is expected


# ---------------------------------------------------------------- collect_files


def test_include_and_exclude(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path,
        {
            "src/a.py": "a\n",
            "src/b.txt": "b\n",
            "src/migrations/m1.py": "m\n",
            "docs/readme.md": "r\n",
            "top.py": "t\n",
        },
    )
    result = collect_files(root, ["**/*.py"], ["**/migrations/**"])
    assert set(paths(result)) == {"src/a.py", "top.py"}
    assert set(paths(collect_files(root, ["src/*", "docs/*.md"], []))) == {"src/a.py", "src/b.txt", "docs/readme.md"}
    assert paths(collect_files(root, ["nothing/**"], [])) == []


def test_text_is_read_verbatim(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"a.py": "x = 'é'\n\nprint(x)\n"})
    [source] = collect_files(root, ["**/*"], []).files
    assert source.text == "x = 'é'\n\nprint(x)\n"
    assert source.lines == 3


def test_git_and_pycache_are_always_excluded(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path,
        {
            ".git/config": "[core]\n",
            ".git/HEAD": "ref: refs/heads/main\n",
            "__pycache__/a.py": "x\n",
            "pkg/__pycache__/b.py": "x\n",
            "pkg/mod.cpython-311.pyc": "x\n",
            "pkg/mod.py": "y\n",
        },
    )
    assert paths(collect_files(root, ["**/*"], [])) == ["pkg/mod.py"]
    assert paths(collect_files(root, ["**"], [])) == ["pkg/mod.py"]
    assert paths(collect_files(root, [".git/*", "**/__pycache__/*", "**/*.pyc"], [])) == []


def test_nested_git_folder_is_excluded(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"vendor/lib/.git/config": "[remote]\nurl = https://token@host/x\n", "a.py": "a\n"})
    assert paths(collect_files(root, ["**/*"], [])) == ["a.py"]


def test_binary_and_non_utf8_files_are_skipped_with_reason(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"img.png": b"\x89PNG\r\n\x1a\n\x00\x00", "latin.txt": b"caf\xe9\n", "ok.txt": "ok\n"})
    result = collect_files(root, ["**/*"], [])
    assert paths(result) == ["ok.txt"]
    reasons = skipped(result)
    assert set(reasons) == {"img.png", "latin.txt"}
    assert "binary" in reasons["img.png"]
    assert "UTF-8" in reasons["latin.txt"]


def test_large_file_is_skipped_with_reason(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"big.txt": "x" * (MAX_FILE_BYTES + 1), "small.txt": "x"})
    result = collect_files(root, ["**/*"], [])
    assert paths(result) == ["small.txt"]
    assert "big.txt" in skipped(result)


def test_symlink_outside_workspace_is_skipped(tmp_path: Path) -> None:
    outside = make_tree(tmp_path / "outside", {"secret.py": "TOKEN = 'x'\n"})
    root = make_tree(tmp_path / "ws", {"a.py": "a\n", "inner.py": "i\n"})
    (root / "leak.py").symlink_to(outside / "secret.py")
    (root / "relative_leak.py").symlink_to(Path("..") / "outside" / "secret.py")
    (root / "alias.py").symlink_to(root / "inner.py")
    (root / "linked_dir").symlink_to(outside, target_is_directory=True)
    result = collect_files(root, ["**/*"], [])
    assert "leak.py" not in paths(result) and "relative_leak.py" not in paths(result)
    assert not any("secret" in f.text or f.path.startswith("linked_dir") for f in result.files)
    reasons = skipped(result)
    assert reasons["leak.py"] == "resolves outside the workspace"
    assert reasons["relative_leak.py"] == "resolves outside the workspace"
    assert {"a.py", "alias.py", "inner.py"} <= set(paths(result))


def test_workspace_given_as_relative_or_symlinked_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_tree(tmp_path / "ws", {"a.py": "a\n"})
    (tmp_path / "ws-link").symlink_to(root, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    assert paths(collect_files(Path("ws"), ["**/*"], [])) == ["a.py"]
    assert paths(collect_files(tmp_path / "ws-link", ["**/*"], [])) == ["a.py"]


def test_order_is_deterministic(tmp_path: Path) -> None:
    names = ["b.py", "a.py", "c/z.py", "c/a.py", "aa/m.py", "c/d/e.py"]
    first = collect_files(make_tree(tmp_path / "one", dict.fromkeys(names, "x\n")), ["**/*"], [])
    second = collect_files(make_tree(tmp_path / "two", dict.fromkeys(reversed(names), "x\n")), ["**/*"], [])
    assert paths(first) == paths(second)
    assert sorted(paths(first)) == sorted(names)
    by_folder: dict[str, list[str]] = {}
    for path in paths(first):
        by_folder.setdefault(os.path.dirname(path), []).append(path)
    assert all(group == sorted(group) for group in by_folder.values())


# ---------------------------------------------------------------- pack_files


def source(path: str, lines: int, width: int = 30) -> SourceFile:
    return SourceFile(path, "".join(f"{path} line {n:04d} ".ljust(width, "x") + "\n" for n in range(1, lines + 1)))


FILES = [source("a.py", 10), source("b.py", 40), source("c.py", 5), source("d.py", 8)]


def cost(files: list[SourceFile], count: Callable[[str], int] = estimate) -> int:
    """Tokens of the packed listing: every block plus the separators between them."""
    blocks = sum(count(render_file(f.path, f.text)) for f in files)
    return blocks + count(BLOCK_SEPARATOR) * max(0, len(files) - 1)


def test_everything_fits() -> None:
    packed = pack_files(FILES, cost(FILES) + 10, estimate)
    assert packed.files == ["a.py", "b.py", "c.py", "d.py"]
    assert packed.truncated == [] and packed.omitted == []
    assert packed.tokens == cost(FILES)
    for f in FILES:
        assert f'<file path="{f.path}">' in packed.text
        assert f.text.splitlines()[-1] in packed.text


def test_exact_budget_fits() -> None:
    packed = pack_files(FILES[:1], cost(FILES[:1]), estimate)
    assert packed.files == ["a.py"] and not packed.truncated


def test_a_file_that_does_not_fit_is_cut_at_a_line_boundary_leaving_room_for_the_next() -> None:
    budget = cost(FILES[:1]) + cost(FILES[1:2]) // 2
    packed = pack_files(FILES, budget, estimate)
    assert packed.files[:2] == ["a.py", "b.py"]
    [note] = [t for t in packed.truncated if t.startswith("b.py")]
    assert "of 40" in note
    kept = [line for line in FILES[1].text.splitlines() if line in packed.text]
    assert 0 < len(kept) < 40
    assert kept == FILES[1].text.splitlines()[: len(kept)], "a prefix of whole lines"
    assert "truncated" in packed.text
    # more files of the task follow: b.py took half of what was left, and c.py fits after it
    assert "c.py" in packed.files
    assert packed.tokens <= budget
    assert [e["how"] for e in packed.packed][:2] == ["whole", "cut"]


def test_the_last_file_of_the_task_that_does_not_fit_takes_all_that_is_left() -> None:
    budget = cost(FILES[:1]) + cost(FILES[1:2]) // 2
    packed = pack_files(FILES[:2], budget, estimate)
    alone = pack_files(FILES[:2] + FILES[2:3], budget, estimate)
    assert packed.files == ["a.py", "b.py"]
    shown = packed.packed[1]["lines"]
    assert int(shown.split("-")[1].split()[0]) > int(alone.packed[1]["lines"].split("-")[1].split()[0])


def test_files_ranked_by_the_map_are_whole_or_left_out_and_packing_goes_on() -> None:
    items = [
        PackItem(FILES[0], "named in the task"),
        PackItem(FILES[1], "ranked by the repository map", focus=False),
        PackItem(FILES[2], "ranked by the repository map", focus=False),
    ]
    budget = cost(FILES[:1]) + cost(FILES[2:3]) + 5
    packed = pack_files(items, budget, estimate)
    assert packed.files == ["a.py", "c.py"] and packed.omitted == ["b.py"] and not packed.truncated
    assert packed.packed == [
        {"path": "a.py", "how": "whole", "why": "named in the task"},
        {"path": "c.py", "how": "whole", "why": "ranked by the repository map"},
    ]


def test_a_cut_keeps_the_lines_the_task_is_about() -> None:
    big = source("big.py", 300)
    item = PackItem(big, "defines thing, named in the task", lines=[(200, 200)])
    packed = pack_files([item], cost([big]) // 5, estimate)
    assert packed.packed[0]["how"] == "cut"
    assert "big.py line 0200" in packed.text and "big.py line 0001" not in packed.text
    assert '<file path="big.py">' in packed.text and "  200| " in packed.text
    start, end = (int(n) for n in packed.packed[0]["lines"].split()[0].split("-"))
    assert start < 200 < end and end - start > 20
    assert packed.tokens <= cost([big]) // 5


@pytest.mark.parametrize(
    "count", [estimate, len, lambda s: len(s.split()) + 1, lambda s: len(s.encode("utf-8")) // 4 + 1]
)
def test_never_over_budget(count: Callable[[str], int]) -> None:
    total = cost(FILES, count)
    for budget in range(0, total + 20):
        packed = pack_files(FILES, budget, count)
        assert packed.tokens <= budget, budget
        # every file is accounted for exactly once, and those packed keep their order
        assert sorted(packed.files + packed.omitted) == [f.path for f in FILES], budget
        assert packed.files == [f.path for f in FILES if f.path in packed.files]
        assert all(any(t.startswith(path) for path in packed.files) for t in packed.truncated)
        # the reported tokens are those of the blocks that made it in
        assert (packed.tokens == 0) == (packed.files == [])


def test_packed_text_itself_fits_the_budget() -> None:
    budget = cost(FILES[:2], len)
    packed = pack_files(FILES[:2], budget, len)
    assert len(packed.text) <= budget


def test_zero_budget_omits_everything() -> None:
    packed = pack_files(FILES, 0, estimate)
    assert packed.files == [] and packed.truncated == []
    assert packed.omitted == [f.path for f in FILES]
    assert packed.text == "" and packed.tokens == 0


def test_first_file_too_big_for_even_one_line() -> None:
    packed = pack_files(FILES, 5, estimate)
    assert packed.files == []
    assert packed.omitted == [f.path for f in FILES]


def test_as_dict_reports_what_was_left_out() -> None:
    packed = pack_files(FILES, cost(FILES[:1]) + 30, estimate)
    report = packed.as_dict()
    assert report["files"] == packed.files
    assert report["omitted"] == packed.omitted and report["omitted"]
    assert report["tokens"] == packed.tokens


def test_render_file_numbers_lines() -> None:
    text = render_file("x.py", "a\nb\n", first_line=10)
    assert text.startswith('<file path="x.py">') and text.endswith("</file>")
    assert "   10| a" in text and "   11| b" in text
