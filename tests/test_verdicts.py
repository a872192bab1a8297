"""The pure parts of a verdict: JUnit reports read as hostile input, per-test changes, test
names as targets, which runs cannot judge, and which files are the judge's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.checks import CheckRun, Protection, command_files, named_tests
from orchestrator.checks._junit import changes, matches, read_report, read_reports
from orchestrator.checks._verdict import judge, runs_pytest, unusable, verdict_of

REPORT = """<?xml version="1.0"?>
<testsuites><testsuite name="pytest">
  <testcase classname="tests.test_a" name="test_ok"/>
  <testcase classname="tests.test_a" name="test_bad"><failure message="x"/></testcase>
  <testcase classname="tests.test_a.TestK" name="test_err[1]"><error message="y"/></testcase>
  <testcase classname="tests.test_a" name="test_skip"><skipped/></testcase>
  <testcase classname="tests.test_a" name="test_ok"><failure message="rerun failed"/></testcase>
</testsuite></testsuites>
"""


def test_a_junit_report_gives_each_tests_worst_status(tmp_path: Path) -> None:
    (tmp_path / "r.xml").write_text(REPORT)
    tests, problem = read_report(tmp_path / "r.xml")
    assert problem == "" and tests == {
        "tests.test_a::test_ok": "failed",  # reported twice: a rerun does not hide the failure
        "tests.test_a::test_bad": "failed",
        "tests.test_a.TestK::test_err[1]": "failed",
        "tests.test_a::test_skip": "skipped",
    }


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("<testsuite><testcase", "not valid XML"),
        ('<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
         '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
         '<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">'
         '<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">]>'
         '<testsuite><testcase name="&h;"/></testsuite>', "not valid XML"),
    ],
)  # fmt: skip
def test_a_hostile_report_is_refused_not_expanded(tmp_path: Path, text: str, why: str) -> None:
    (tmp_path / "r.xml").write_text(text)
    tests, problem = read_report(tmp_path / "r.xml")
    assert tests is None and why in problem


def test_a_report_is_never_read_through_a_link_or_outside_the_copy(tmp_path: Path) -> None:
    secret = tmp_path / "secret.xml"
    secret.write_text(REPORT)
    copy = tmp_path / "copy"
    (copy / "reports").mkdir(parents=True)
    (copy / "reports" / "junit.xml").symlink_to(secret)
    (copy / "out").symlink_to(tmp_path)
    assert read_reports(copy, "reports/junit.xml")[0] is None
    assert read_reports(copy, "out/secret.xml") == (None, "the check wrote no JUnit report at out/secret.xml")
    os.mkfifo(copy / "reports" / "fifo.xml")
    assert read_report(copy / "reports" / "fifo.xml")[0] is None  # a pipe cannot hang the reader


def test_what_a_patch_did_to_each_test() -> None:
    before = {"a": "passed", "b": "failed", "c": "failed", "d": "passed", "e": "skipped"}
    after = {"a": "failed", "b": "passed", "c": "failed", "f": "passed", "e": "passed"}
    found = changes(before, after)  # type: ignore[arg-type]
    assert (found.fixed, found.broken, found.still_failing, found.added, found.removed) == (
        ["b"], ["a"], ["c"], ["f"], ["d"]
    )  # fmt: skip
    assert found.counts == {"fixed": 1, "broken": 1, "still_failing": 1, "added": 1, "removed": 1}


def test_test_names_as_a_user_writes_them_match_the_reported_ids() -> None:
    reported = "tests.test_store.TestStore::test_empty[2]"
    for name in ("test_empty", "TestStore::test_empty", "tests/test_store.py::TestStore::test_empty", reported):
        assert matches(reported, name), name
    assert not matches(reported, "test_empty[3]") and not matches(reported, "empty")
    assert not matches("tests.test_x::test_empty_too", "test_empty")
    assert named_tests("Find why test_new_store_is_empty fails (tests/test_s.py::test_y[a]); the latest_x") == [
        "test_new_store_is_empty",
        "tests/test_s.py::test_y[a]",
    ]


@pytest.mark.parametrize(
    ("command", "pytest_"),
    [
        ("python -m pytest -q", True),
        ("pytest", True),
        (["py.test", "-x"], True),
        ("cd src && ../.venv/bin/pytest tests", True),
        ("make test", False),
        ("python -m pytest_cov_report", False),
    ],
)
def test_which_commands_run_pytest(command: str | list[str], pytest_: bool) -> None:
    assert runs_pytest(command) is pytest_


def run(status: str, code: int | None, tests: dict[str, str] | None = None, output: str = "") -> CheckRun:
    return CheckRun.model_validate({"name": "t", "status": status, "exit_code": code, "tests": tests, "output": output})


def test_runs_that_cannot_judge() -> None:
    assert unusable(run("fail", 2), pytest=True).startswith("pytest was interrupted")
    assert unusable(run("fail", 5), pytest=True) == "pytest collected no tests (exit 5)"
    assert unusable(run("fail", 2), pytest=False) == ""  # another tool's exit 2 is a failure
    assert unusable(run("timeout", None), pytest=True) == "the check timed out"
    assert unusable(run("pass", 0, {}), pytest=False) == "the check's report lists no test"
    failed_import = "ERROR: test_a (unittest.loader._FailedTest.test_a)\nImportError: no module"
    assert unusable(run("fail", 1, output=failed_import), pytest=False) == "unittest could not import a test module"
    assert unusable(run("fail", 1, {"a": "failed"}), pytest=True) == ""


def test_a_check_judges_by_its_tests_when_it_reports_them() -> None:
    before = run("fail", 1, {"target": "failed", "other": "failed", "kept": "passed"})
    fixed = run("fail", 1, {"target": "passed", "other": "failed", "kept": "passed"})
    broke = run("fail", 1, {"target": "passed", "other": "failed", "kept": "failed"})
    zeroed = run("pass", 0, {"target": "failed", "other": "failed", "kept": "passed"})
    assert judge(before, fixed, ["target"]).judged == "pass"
    assert judge(before, fixed, []).judged == "fail"  # without targets the check must pass
    assert "breaks 1 test(s) that passed before: kept" in judge(before, broke, ["target"]).problem
    assert "exits 0 but its report lists failed tests" in judge(before, zeroed, []).problem
    collection = run("fail", 2)
    collection.unusable = "pytest was interrupted (errors during collection) (exit 2)"
    assert judge(collection, fixed, []).judged == "inconclusive"
    assert judge(before, collection, ["target"]).problem.startswith("with the patch, pytest was interrupted")
    outcomes = [judge(collection, fixed, []), judge(before, broke, ["target"])]
    assert verdict_of(outcomes, True)[0] == "unverified"  # a broken test outweighs a check that cannot judge
    assert verdict_of(outcomes[:1], False)[0] == "inconclusive"


def test_the_judges_files(tmp_path: Path) -> None:
    protection = Protection(named=frozenset({"ci/run.sh"}))
    for path in ("tests/test_a.py", "pkg/tests/data.json", "conftest.py", "sub/conftest.py", "tox.ini", "ci/run.sh"):
        assert protection.covers(path), path
    for path in ("src/pkg/core.py", "docs/testing.md", "contest.py"):
        assert not protection.covers(path), path
    original, patched = tmp_path / "a", tmp_path / "b"
    for root, section in ((original, "addopts = '-q'"), (patched, "addopts = '-q -p no:randomly'")):
        root.mkdir()
        (root / "pyproject.toml").write_text(f"[project]\nname = 'x'\n\n[tool.pytest.ini_options]\n{section}\n")
    assert protection.touched(["pyproject.toml", "src/x.py"], original, patched) == ["pyproject.toml"]
    (patched / "pyproject.toml").write_text((original / "pyproject.toml").read_text().replace("'x'", "'y'"))
    assert protection.touched(["pyproject.toml"], original, patched) == []  # not the test-runner sections
    (tmp_path / "a" / "run_tests.sh").write_text("exit 0\n")
    assert command_files(["sh run_tests.sh -v", ["python", "missing.py"], "cat /etc/passwd ../x"], original) == {
        "run_tests.sh"
    }
