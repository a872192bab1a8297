"""Verification on repositories shaped like real ones, each with a real bubblewrap sandbox, real
subprocesses, and a real virtual environment (`python -m venv`, the project installed with
`pip install -e` offline): an editable src-layout package, a package named like one of the
orchestrator's own dependencies (`click`), a gitignored generated `_version.py`, a baseline with
a collection error, an already-failing suite where a patch breaks another test, a patch that adds
a conftest.py zeroing pytest's exit status, and a non-Python check writing JUnit XML. Each gets
the right verdict and reason, and `orchestrator verify` says which interpreter ran and where the
package under test came from."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator import verify_patches
from orchestrator.checks import PatchVerdict, bubblewrap_problem, unified_diff
from orchestrator.spec import load_spec
from tests.envs import environment, pip_install_editable
from tests.process import orchestrator

pytestmark = pytest.mark.skipif(bool(bubblewrap_problem()), reason=bubblewrap_problem() or "")

PYTEST = "python -m pytest -q -p no:cacheprovider"
PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "0.1"

[tool.setuptools.packages.find]
where = ["src"]
"""
SPEC = """\
version: 1
name: {name}
goal: Fix the failing test.
workspace: .
checks:
  tests: {{run: "{run}", timeout_s: 120}}
verify: {{sandbox: required{verify}}}
"""


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def repository(root: Path, files: dict[str, str], run: str = PYTEST, verify: str = "") -> Path:
    """A git repository with `files` and a spec whose checks run `run`; returns the spec."""
    write_tree(root, files)
    (root / "spec.yaml").write_text(SPEC.format(name=root.name, run=run, verify=verify))
    git = ["git", "-c", "user.email=t@example", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "start"], cwd=root, check=True)
    return root / "spec.yaml"


def fix(path: str, before: str, after: str) -> str:
    return unified_diff(path, textwrap.dedent(before), textwrap.dedent(after))


@dataclass
class Shapes:
    env: Path
    editable: Path
    click: Path
    click_bare: Path
    version: Path


HUMBLE = "def natural(size):\n    return f'{size} B'\n"
HUMBLE_FIXED = "def natural(size):\n    return f'{size / 1000:.1f} kB' if size >= 1000 else f'{size} B'\n"
SHOUT = "def shout(text):\n    return text.lower()\n"
SHOUT_FIXED = "def shout(text):\n    return text.upper()\n"
VERSIONED = "from versioned._version import __version__\n\n\ndef major():\n    return __version__.split('.')[1]\n"
VERSIONED_FIXED = "from versioned._version import __version__\n\n\ndef major():\n    return __version__.split('.')[0]\n"


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Shapes:
    """The repositories and the one environment they are installed in (editable), built once."""
    root = tmp_path_factory.mktemp("shapes")
    editable = repository(
        root / "humble",
        {
            "pyproject.toml": PYPROJECT.format(name="humble"),
            "src/humble/__init__.py": "from humble.size import natural\n",
            "src/humble/size.py": HUMBLE,
            "tests/test_size.py": """\
                from humble import natural

                def test_bytes():
                    assert natural(10) == '10 B'

                def test_kilobytes():
                    assert natural(1500) == '1.5 kB'
            """,
        },
    )
    click_files = {
        "pyproject.toml": PYPROJECT.format(name="click"),
        ".gitignore": ".venv\n",
        "src/click/__init__.py": SHOUT,
        "tests/test_shout.py": "from click import shout\n\n\ndef test_shout():\n    assert shout('hi') == 'HI'\n",
    }
    click = repository(root / "click", click_files)
    click_bare = repository(root / "click-bare", click_files)
    version = repository(
        root / "versioned",
        {
            "pyproject.toml": PYPROJECT.format(name="versioned"),
            ".gitignore": "src/versioned/_version.py\n",
            "src/versioned/__init__.py": VERSIONED,
            "tests/test_version.py": "from versioned import major\n\n\ndef test_major():\n    assert major() == '2'\n",
        },
    )
    # written at install time by hatch-vcs or setuptools-scm, and ignored by git
    (root / "versioned" / "src" / "versioned" / "_version.py").write_text("__version__ = '2.4.1'\n")
    env = environment(root / "env")
    pip_install_editable(env, editable.parent, click.parent, version.parent)
    (click.parent / ".venv").symlink_to(env)  # the click repository's own environment
    return Shapes(env, editable, click, click_bare, version)


def cli_verify(
    spec: Path, diff: str, tmp_path: Path, text: bool = False, **env: str
) -> tuple[int, dict[str, object], str]:
    """`orchestrator verify SPEC --patch DIFF --json`: the exit code, the JSON verdict, and (with
    `text`) what the command prints without --json."""
    patch = tmp_path / "fix.diff"
    patch.write_text(diff)
    as_json = orchestrator("verify", spec, "--patch", patch, "--json", env=env)
    printed = orchestrator("verify", spec, "--patch", patch, env=env) if text else None
    assert printed is None or printed.returncode == as_json.returncode, printed
    return as_json.returncode, json.loads(as_json.stdout), printed.stdout if printed else ""


def test_an_editable_src_layout_install_runs_the_patched_copy(shapes: Shapes, tmp_path: Path) -> None:
    # the developer's environment is active: its editable finder points at the workspace's path
    diff = fix("src/humble/size.py", HUMBLE, HUMBLE_FIXED)
    code, payload, text = cli_verify(shapes.editable, diff, tmp_path, text=True, VIRTUAL_ENV=str(shapes.env))
    assert code == 0 and payload["verdict"] == "verified", payload["reason"]
    assert payload["fixed"] == ["tests.test_size::test_kilobytes"] and payload["broken"] == []
    environment = payload["environment"]
    assert isinstance(environment, dict)
    assert environment["interpreter"] == str(shapes.env / "bin" / "python") and environment["source"] == "VIRTUAL_ENV"
    (package,) = environment["packages"]
    workspace = shapes.editable.parent
    assert package == {
        "package": "humble",
        "path": str(workspace / "src" / "humble" / "__init__.py"),
        "in_copy": True,
        "error": "",
    }
    assert f"interpreter: {shapes.env / 'bin' / 'python'} (VIRTUAL_ENV" in text
    assert f"humble imported from {workspace / 'src' / 'humble' / '__init__.py'} (the patched copy)" in text
    assert (workspace / "src" / "humble" / "size.py").read_text() == HUMBLE  # the workspace is only read


def test_a_package_named_like_our_own_dependency_runs_from_the_workspace_environment(
    shapes: Shapes, tmp_path: Path
) -> None:
    # this test's own environment (the orchestrator's, with the real click) is the active one
    diff = fix("src/click/__init__.py", SHOUT, SHOUT_FIXED)
    code, payload, _ = cli_verify(shapes.click, diff, tmp_path)
    assert code == 0 and payload["verdict"] == "verified", payload["reason"]
    environment = payload["environment"]
    assert isinstance(environment, dict) and environment["source"] == "the workspace's .venv"
    assert environment["interpreter"] == str(shapes.click.parent / ".venv" / "bin" / "python")
    (package,) = environment["packages"]
    assert package["path"] == str(shapes.click.parent / "src" / "click" / "__init__.py") and package["in_copy"]


def test_a_package_imported_from_elsewhere_is_inconclusive_with_the_path_and_what_to_do(
    shapes: Shapes, tmp_path: Path
) -> None:
    # no environment of its own: the active one has another `click` installed
    diff = fix("src/click/__init__.py", SHOUT, SHOUT_FIXED)
    code, payload, text = cli_verify(shapes.click_bare, diff, tmp_path, text=True)
    own_click = Path(importlib.metadata.distribution("click").locate_file("click/__init__.py")).resolve()
    assert code == 1 and payload["verdict"] == "inconclusive"
    reason = str(payload["reason"])
    assert f"click was imported from {own_click}, not from the patched copy" in reason
    assert "pip install -e ." in reason and payload["checks"] == []
    assert text.startswith("inconclusive: ") and "NOT the patched copy" in text


def test_a_gitignored_generated_version_file_is_in_the_copy(shapes: Shapes, tmp_path: Path) -> None:
    diff = fix("src/versioned/__init__.py", VERSIONED, VERSIONED_FIXED)
    code, payload, _ = cli_verify(shapes.version, diff, tmp_path, VIRTUAL_ENV=str(shapes.env))
    assert code == 0 and payload["verdict"] == "verified", payload["reason"]
    environment = payload["environment"]
    assert isinstance(environment, dict) and environment["ignored_files"] >= 1 and not environment["bound"]
    checks = payload["checks"]
    assert isinstance(checks, list) and (checks[0]["before"], checks[0]["after"]) == ("fail", "pass")


def judged(spec: Path, *diffs: str, **overrides: str) -> list[PatchVerdict]:
    """The verdicts of `diffs` by the spec's checks, in process (`verify_patches`)."""
    verdicts, _ = verify_patches(load_spec(spec, [f"{k}={v}" for k, v in overrides.items()]), list(diffs))
    return verdicts


@pytest.fixture
def project_env(shapes: Shapes, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shapes' environment is the active one (a small one: its pytest starts fast)."""
    monkeypatch.setenv("VIRTUAL_ENV", str(shapes.env))
    return shapes.env


CALC = "def add(a, b):\n    return a - b\n"
CALC_FIXED = "def add(a, b):\n    return a + b\n"


@pytest.mark.parametrize(
    ("tests", "why"),
    [
        ({"tests/test_a.py": "import not_a_module\n\n\ndef test_a():\n    assert True\n"}, "errors during collection"),
        ({"tests/README.md": "no tests yet\n"}, "collected no tests"),
    ],
)
def test_a_baseline_that_cannot_judge_is_inconclusive(
    project_env: Path, tmp_path: Path, tests: dict[str, str], why: str
) -> None:
    spec = repository(tmp_path / "ws", {"calc.py": CALC, **tests})
    verdicts, report = verify_patches(load_spec(spec), [fix("calc.py", CALC, CALC_FIXED)])
    (verdict,) = verdicts
    assert verdict.verdict == "inconclusive" and why in verdict.reason, verdict.reason
    assert "the baseline cannot judge" in verdict.reason
    assert verdict.checks[0].after is None  # not run again with the patch: it could not judge either
    assert report.gate.startswith("verify.require: 1 proposed patch(es) not verified (patch-1 inconclusive)")


TEXT = """\
def _letters(text):
    return list(text)


def reverse(text):
    return "".join(reversed(_letters(text)))


def title(text):
    return text
"""
TEXT_TESTS = """\
from text import reverse, title


def test_reversed():
    assert reverse("abc") == "cba"


def test_title():
    assert title("hello world") == "Hello World"


def test_legacy():
    assert title("") == "(empty)"
"""
# fixes test_title, and breaks test_reversed through the helper they now share
WRONG = TEXT.replace("return list(text)", "return list(text.title())").replace(
    "    return text\n", "    return ''.join(_letters(text))\n"
)
RIGHT = TEXT.replace("    return text\n", "    return text.title()\n")
ZEROING = "def pytest_sessionfinish(session, exitstatus):\n    session.exitstatus = 0\n"


@pytest.fixture
def failing_suite(project_env: Path, tmp_path: Path) -> Path:
    """A suite that already fails (test_legacy) before the bug the patches are about (test_title)."""
    return repository(tmp_path / "ws", {"text.py": TEXT, "tests/test_text.py": TEXT_TESTS})


def test_a_patch_that_breaks_a_test_that_passed_is_unverified_even_in_a_failing_suite(failing_suite: Path) -> None:
    wrong, right = judged(failing_suite, fix("text.py", TEXT, WRONG), fix("text.py", TEXT, RIGHT))
    assert wrong.verdict == "unverified" and wrong.broken == ["tests.test_text::test_reversed"]
    assert wrong.fixed == ["tests.test_text::test_title"] and "breaks 1 test(s) that passed before" in wrong.reason
    # on exit codes alone both read "fail -> fail"; the right one fixed its test and broke none
    assert right.verdict == "unverified" and right.broken == [] and right.fixed == ["tests.test_text::test_title"]
    (check,) = right.checks
    assert (check.before, check.after) == ("fail", "fail") and check.tests is not None
    assert check.tests.still_failing == ["tests.test_text::test_legacy"]


def test_target_tests_verify_a_fix_while_other_tests_still_fail(failing_suite: Path) -> None:
    overrides = {"verify.target_tests": '["tests/test_text.py::test_title"]'}
    wrong, right = judged(failing_suite, fix("text.py", TEXT, WRONG), fix("text.py", TEXT, RIGHT), **overrides)
    assert right.verdict == "verified" and right.targets == ["tests.test_text::test_title"], right.reason
    assert "the target tests pass" in right.reason
    assert wrong.verdict == "unverified" and wrong.broken == ["tests.test_text::test_reversed"]
    (unknown,) = judged(failing_suite, fix("text.py", TEXT, RIGHT), **{"verify.target_tests": "[test_nothing]"})
    assert unknown.verdict == "inconclusive" and "test_nothing" in unknown.reason


def test_a_conftest_that_zeroes_the_exit_status_is_put_back_and_flagged(failing_suite: Path) -> None:
    zeroing = unified_diff("conftest.py", None, ZEROING)
    (verdict,) = judged(failing_suite, zeroing)
    assert verdict.verdict == "unverified" and verdict.touches_tests == ["conftest.py"] and not verdict.judge_changed
    assert "put back as in the workspace" in verdict.reason
    (check,) = verdict.checks
    assert (check.before, check.after) == ("fail", "fail")
    # allowed to change the judge, the patch's conftest runs: the exit status is 0, the report is not
    (allowed,) = judged(failing_suite, zeroing, **{"verify.allow_test_changes": "true"})
    assert allowed.verdict == "unverified" and allowed.judge_changed
    (check,) = allowed.checks
    assert check.after == "pass" and "exits 0 but its report lists failed tests" in check.problem


LIB = "add() { echo $(($1 + $2)); }\nmul() { echo $(($1 + $2)); }\n"
RUN_TESTS = r"""
. ./lib.sh
mkdir -p reports
cases=""
failed=0
check() {
  if [ "$2" = "$3" ]; then cases="$cases<testcase classname=\"lib\" name=\"$1\"/>"
  else cases="$cases<testcase classname=\"lib\" name=\"$1\"><failure message=\"$2 != $3\"/></testcase>"; failed=1
  fi
}
check test_add "$(add 2 3)" 5
check test_mul "$(mul 2 3)" 6
echo "<testsuite name=\"lib\">$cases</testsuite>" > reports/junit.xml
exit $failed
"""


def test_a_non_python_check_is_judged_per_test_from_its_junit_report(tmp_path: Path) -> None:
    files = {"lib.sh": LIB, "run_tests.sh": RUN_TESTS, ".gitignore": "reports/\n"}
    spec = repository(tmp_path / "ws", files, run="sh run_tests.sh")
    spec.write_text(spec.read_text().replace("timeout_s: 120}", 'timeout_s: 120, junit: "reports/*.xml"}'))
    # a stale report of the workspace, all green, is not what the check said
    write_tree(
        tmp_path / "ws", {"reports/junit.xml": '<testsuite><testcase classname="lib" name="test_mul"/></testsuite>'}
    )
    right = fix("lib.sh", LIB, LIB.replace("mul() { echo $(($1 + $2))", "mul() { echo $(($1 * $2))"))
    wrong = fix("lib.sh", LIB, LIB.replace("$1 + $2", "$1 * $2"))
    cheat = fix("run_tests.sh", RUN_TESTS, RUN_TESTS.replace("exit $failed", "exit 0"))
    fixed, broke, cheated = judged(spec, right, wrong, cheat)
    assert fixed.verdict == "verified" and fixed.fixed == ["lib::test_mul"], fixed.reason
    assert broke.verdict == "unverified" and broke.broken == ["lib::test_add"]
    # the script the check's command names is the judge's: put back
    assert cheated.verdict == "unverified" and cheated.touches_tests == ["run_tests.sh"]


def test_a_project_that_turns_pytests_junitxml_off_is_judged_by_its_exit_code(
    project_env: Path, tmp_path: Path
) -> None:
    files = {
        "calc.py": CALC,
        "pytest.ini": "[pytest]\naddopts = -p no:junitxml\n",
        "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
    }
    (verdict,) = judged(repository(tmp_path / "ws", files), fix("calc.py", CALC, CALC_FIXED))
    assert verdict.verdict == "verified" and verdict.checks[0].tests is None, verdict.reason
