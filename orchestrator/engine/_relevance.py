"""Which files a call is about, in the order they are packed into its prompt, each with why.

1. **priority**: files given from outside the task (a pull request's changed files and hunks,
   `RunContext.priority`), first of all;
2. **the task's files**: those the subtask names, and files named in its instruction or the goal
   (by path, or by a file name that only one file has);
3. **for a debug task**, the failing test (a test file named, or the file defining a test the
   instruction names) and then the modules that test imports;
4. **symbols named**: files that define a name the instruction or goal mentions, then files that
   use it, found with the `grep` tool's own search (`_grep.py`);
5. **the rest**, by the repository map's rank (`_repomap.py`), restarted at everything above.

Each file keeps the lines to keep in view if it must be cut (a named symbol's definition, a
priority hunk), so a cut keeps what the task is about rather than the file's first lines.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestrator.engine._grep import grep_lines
from orchestrator.engine._repomap import IDENTIFIER, RepoIndex
from orchestrator.workspace import SourceFile

GREP_TIMEOUT_S = 2.0
GREP_MATCHES = 2000
MAX_NAMES = 40  # identifiers of a task's text searched for
USERS = 20  # files using a named symbol packed ahead of the map's ranking (whole or not at all)
PATHLIKE = re.compile(r"[\w./-]+\.\w+")
TEST_FILE = re.compile(r"(^|/)(test_[^/]*|[^/]*_test)\.py$|(^|/)tests?/")
# words of a task's text that are never worth a search as identifiers
_COMMON_WORDS = (
    "the and for with from that this into why what when which where does not its are was fix find "
    "check review document refactor simplify without changing results module modules file files "
    "code test tests function class method package public api"
)
COMMON = frozenset(_COMMON_WORDS.split())


@dataclass(frozen=True)
class Priority:
    """A file to pack before anything else, from outside the task (a diff-scoped run's changed
    files): why, and the lines to keep in view if it must be cut (its hunks, 1-based, inclusive)."""

    path: str
    reason: str
    lines: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Focus:
    """What a call is about: its text (the goal and the instruction), the files its task names,
    whether it is a debug task, and the priority files of the run."""

    text: str
    named: tuple[str, ...] = ()
    debug: bool = False
    priority: tuple[Priority, ...] = ()


@dataclass
class PackItem:
    """A file in packing order: why it is there, and the lines to keep if it is cut."""

    source: SourceFile
    reason: str
    lines: list[tuple[int, int]] = field(default_factory=list)
    focus: bool = True  # about the task (cut if it must be); else ranked by the map (whole or left out)


def order(files: Sequence[SourceFile], focus: Focus, index: RepoIndex) -> list[PackItem]:
    """`files` in packing order, each with why."""
    by_path = {f.path: f for f in files}
    items: dict[str, PackItem] = {}

    def add(path: str, reason: str, lines: Sequence[tuple[int, int]] = (), whole: bool = False) -> None:
        if path not in by_path:
            return
        if path in items:
            items[path].lines += [span for span in lines if span not in items[path].lines]
            return
        items[path] = PackItem(by_path[path], reason, list(lines), focus=not whole)

    for given in focus.priority:
        add(given.path, given.reason, given.lines)
    for path in focus.named:
        add(path, "named in the task")
    for path, reason in named_in_text(focus.text, list(by_path)):
        add(path, reason)
    names = identifiers(focus.text, index)
    defines = _definitions(names, index, by_path)
    if focus.debug:
        tests = [p for p in items if TEST_FILE.search(p)]
        tests += [p for p, (name, _) in defines.items() if TEST_FILE.search(p) and name.startswith("test")]
        for test in dict.fromkeys(tests):
            name, line = defines.get(test, ("", 0))
            add(test, f"defines {name}, named in the task" if name else "the failing test", _near(line))
        for test in dict.fromkeys(tests):
            for module in index.imported_by(test):
                add(module, f"imported by {test}", index.imported_lines(test, module))
    for path, (name, line) in defines.items():
        add(path, f"defines {name}, named in the task", _near(line))
    for path, name, line in _uses(names, [by_path[p] for p in by_path if p not in items])[:USERS]:
        add(path, f"uses {name}, named in the task", _near(line), whole=True)
    seeds = {path: 1.0 for path in items}
    mentioned = set(names)
    for path, _score in index.rank(list(by_path), seeds, mentioned):
        if path not in items:
            items[path] = PackItem(by_path[path], "ranked by the repository map", focus=False)
    return list(items.values())


def named_in_text(text: str, paths: Sequence[str]) -> list[tuple[str, str]]:
    """Files the text names: by their path (or a path ending with it), or by a file name no
    other file has."""
    known = set(paths)
    names: dict[str, list[str]] = {}
    for path in paths:
        names.setdefault(path.rsplit("/", 1)[-1], []).append(path)
    found: list[str] = []
    for token in PATHLIKE.findall(text):
        token = token.rstrip(".-/").removeprefix("./")
        parts = token.split("/")
        # a path the text gives from a folder above the workspace ends with the file's path
        whole = next((tail for i in range(len(parts)) if (tail := "/".join(parts[i:])) in known), None)
        if whole is not None:
            found.append(whole)
        elif len(parts) == 1 and len(names.get(token, ())) == 1:
            found.append(names[token][0])
    return [(path, "named in the task's text") for path in dict.fromkeys(found)]


def identifiers(text: str, index: RepoIndex) -> list[str]:
    """The names of the text worth searching for: code-like words (snake_case, CamelCase, with a
    digit) and words some file defines, common English left out."""
    seen: dict[str, None] = {}
    for word in IDENTIFIER.findall(text):
        if word.lower() in COMMON:
            continue
        code_like = "_" in word or any(c.isdigit() for c in word) or any(c.isupper() for c in word[1:])
        if code_like or word in index.definers:
            seen[word] = None
    return list(seen)[:MAX_NAMES]


def _definitions(names: Sequence[str], index: RepoIndex, files: dict[str, SourceFile]) -> dict[str, tuple[str, int]]:
    """File -> (the first named symbol it defines, its line), in the order the names come."""
    found: dict[str, tuple[str, int]] = {}
    for name in names:
        for path in index.definers.get(name, ()):
            if path in files and path not in found:
                line = next((s.line for s in index.symbols[path].defines if s.name == name), 0)
                found[path] = (name, line)
    return found


def _uses(names: Sequence[str], files: Sequence[SourceFile]) -> list[tuple[str, str, int]]:
    """Files using the named symbols (the grep tool's search), most names first: (path, name, line)."""
    if not names:
        return []
    import regex

    pattern = regex.compile(r"\b(" + "|".join(regex.escape(n) for n in names) + r")\b")
    deadline = time.perf_counter() + GREP_TIMEOUT_S
    try:
        # a whole file first: most have none of the names (safe for a pattern with no anchors)
        having = [f for f in files if pattern.search(f.text, timeout=max(0.001, deadline - time.perf_counter()))]
        lines = grep_lines(having, pattern, deadline, GREP_MATCHES)
    except TimeoutError:
        return []
    hits: dict[str, dict[str, int]] = {}
    for source, number, text in lines:
        match = pattern.search(text[:2000])
        if match is not None:
            hits.setdefault(source.path, {}).setdefault(match.group(1), number)
    ranked = sorted(hits.items(), key=lambda item: (-len(item[1]), item[0]))
    return [(path, next(iter(found)), next(iter(found.values()))) for path, found in ranked]


def _near(line: int) -> list[tuple[int, int]]:
    return [(line, line)] if line > 0 else []
