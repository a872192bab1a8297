"""Per-test results from JUnit XML (what pytest's `--junitxml`, go-junit-report, jest-junit and
cargo nextest write): each test's status, the tests a patch fixed, broke or left failing, and
which tests a target name (`tests/test_x.py::TestY::test_z`, `test_z`) stands for.

The report is written by the check, inside the sandbox: it is read as hostile input (bounded in
size and in tests, no entity expansion beyond what expat refuses, never followed out of the
copy)."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from xml.etree import ElementTree

from orchestrator.checks._records import TEST_NAMES, PerTestChanges, TestStatus

MAX_REPORT_BYTES = 32 * 1024 * 1024
MAX_TESTS = 200_000
MAX_REPORTS = 64
_RANK: dict[TestStatus, int] = {"skipped": 0, "passed": 1, "failed": 2}
_NAMED = re.compile(r"(?<![\w./-])(?:[\w./-]+\.py::)?(?:\w+::)*test\w*(?:\[[^\]\s]{0,200}\])?")


def read_reports(root: Path, pattern: str) -> tuple[dict[str, TestStatus] | None, str]:
    """The tests of every report matching `pattern` under `root` (None when there is none or
    one cannot be read), and why not."""
    base = root.resolve()
    paths = sorted(p for p in base.glob(pattern) if p.resolve().is_relative_to(base))[:MAX_REPORTS]
    if not paths:
        return None, f"the check wrote no JUnit report at {pattern}"
    tests: dict[str, TestStatus] = {}
    for path in paths:
        found, problem = read_report(path)
        if found is None:
            return None, problem
        merge(tests, found)
    return tests, ""


def read_report(path: Path) -> tuple[dict[str, TestStatus] | None, str]:
    """One JUnit XML file's tests (a regular file, not a link, within MAX_REPORT_BYTES)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        return None, f"cannot read the JUnit report {path.name}: {exc.strerror or exc}"
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None, f"the JUnit report {path.name} is not a regular file"
        if info.st_size > MAX_REPORT_BYTES:
            return None, f"the JUnit report {path.name} is larger than {MAX_REPORT_BYTES // (1024 * 1024)} MiB"
        data = handle.read(MAX_REPORT_BYTES + 1)
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        return None, f"the JUnit report {path.name} is not valid XML: {exc}"
    tests: dict[str, TestStatus] = {}
    for case in root.iter("testcase"):
        if len(tests) >= MAX_TESTS:
            return None, f"the JUnit report {path.name} has more than {MAX_TESTS} tests"
        name = _test_id(case.get("classname") or "", case.get("name") or "")
        if name:
            merge(tests, {name: _status(case)})
    return tests, ""


def merge(into: dict[str, TestStatus], found: Mapping[str, TestStatus]) -> None:
    """A test reported twice keeps its worst status (a failure is never hidden by a rerun)."""
    for name, status in found.items():
        if name not in into or _RANK[status] > _RANK[into[name]]:
            into[name] = status


def _test_id(classname: str, name: str) -> str:
    classname, name = classname.strip()[:500], name.strip()[:500]
    return f"{classname}::{name}" if classname else name


def _status(case: ElementTree.Element) -> TestStatus:
    tags = {child.tag for child in case}
    if tags & {"failure", "error"}:
        return "failed"
    if "skipped" in tags:
        return "skipped"
    return "passed"


def changes(before: Mapping[str, TestStatus], after: Mapping[str, TestStatus]) -> PerTestChanges:
    """What a patch did to each test: fixed, broken, still failing, added, removed."""
    lists: dict[str, list[str]] = {"fixed": [], "broken": [], "still_failing": [], "added": [], "removed": []}
    for name in sorted(set(before) | set(after)):
        was, now = before.get(name), after.get(name)
        if was is None:
            lists["added"].append(name)
        elif now is None:
            lists["removed"].append(name)
        elif was == "failed" and now == "passed":
            lists["fixed"].append(name)
        elif was == "passed" and now == "failed":
            lists["broken"].append(name)
        elif was == "failed" and now == "failed":
            lists["still_failing"].append(name)
    counts = {key: len(names) for key, names in lists.items()}
    return PerTestChanges(**{key: names[:TEST_NAMES] for key, names in lists.items()}, counts=counts)


def failed(tests: Mapping[str, TestStatus]) -> list[str]:
    return sorted(name for name, status in tests.items() if status == "failed")


def normalized(name: str) -> str:
    """A test's name as dotted parts: `tests/test_x.py::TestY::test_z` and the JUnit id
    `tests.test_x.TestY::test_z` both become `tests.test_x.TestY.test_z`."""
    name = re.sub(r"\.py(?=::|$)", "", name.strip())
    return name.replace("::", ".").replace("/", ".").strip(".")


def matches(test: str, target: str) -> bool:
    """Whether the reported test `test` is the one `target` names (any of its parameters when
    the target gives none)."""
    wanted = normalized(target)
    full = normalized(test)
    if "[" not in wanted:
        full = full.split("[", 1)[0]
    return full == wanted or full.endswith("." + wanted)


def matching(tests: Iterable[str], target: str) -> list[str]:
    return [test for test in tests if matches(test, target)]


def named_tests(text: str) -> list[str]:
    """The test names an instruction mentions ("find why test_login fails")."""
    return sorted({m.group(0) for m in _NAMED.finditer(text) if "test_" in m.group(0) or "::" in m.group(0)})
