"""The judge of an instance: the spec's own verifier on the instance's judge checkout (its base with
the test patch applied), so the checks run as every verification runs them (in the sandbox, on a
scratch copy, per test from their JUnit reports, recorded with `--record` and served on
`--replay`). The baseline runs once per instance and says whether the instance holds (every
FAIL_TO_PASS test fails, every PASS_TO_PASS test passes); each distinct patch then runs once.

The model's changes to the judge's files are dropped before its patch is judged, as SWE-bench
checks its test files out again before it applies its test patch: the test patch's files, the
spec's protected files (`verify.protect`, by default the test folders, conftest.py, pytest.ini,
...) and pyproject.toml. A patch is `resolved` when every FAIL_TO_PASS test passes and every
PASS_TO_PASS test passes or is skipped (SWE-bench's grading: a missing test fails)."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from orchestrator.checks import CheckRun, Verifier, header_paths, matching, normalized
from orchestrator.errors import SpecError
from orchestrator.runtime.evaluation._git import drop_files
from orchestrator.runtime.verify import make_verifier, refuse_without_sandbox
from orchestrator.spec.evalfile import Instance
from orchestrator.workflow import Workflow

TestStatus = Literal["passed", "failed", "skipped"]
_RANK = {"skipped": 0, "passed": 1, "failed": 2}
SHOWN = 20
OWNER = "eval"  # the owner of every judged run in a recording (so equal patches share it)


def judged_checks(workflow: Workflow, wanted: Sequence[str] | None) -> list[str]:
    """The spec's checks that judge: the eval's `judge`, else verify.checks when set, else all."""
    spec = workflow.loaded.spec
    if not spec.checks:
        raise SpecError(f"{workflow.loaded.path}: the spec declares no checks: an eval is judged by them")
    names = list(wanted or spec.verify.checks or spec.checks)
    unknown = [name for name in names if name not in spec.checks]
    if unknown:
        raise SpecError(f"judge: {', '.join(unknown)} is not a check of {workflow.loaded.path}")
    return names


def verifier_at(workflow: Workflow, workspace: Path, recorder: Any = None) -> Verifier:
    """The verifier the run's spec makes, for another checkout of the same repository (its
    sandbox, limits and protected files as the operator's floor left them)."""
    loaded = copy.copy(workflow.loaded)
    loaded.spec = workflow.loaded.spec.model_copy(deep=True)
    loaded.workspace = workspace.resolve()
    verifier = make_verifier(loaded, recorder=recorder, policy=workflow.operator.policy)
    if verifier is None:
        raise SpecError(f"{workflow.loaded.path}: the spec declares no checks: an eval is judged by them")
    refuse_without_sandbox(verifier)
    return verifier


async def run_setup(workflow: Workflow, workspace: Path, command: str, timeout_s: float) -> str:
    """Run an instance's `setup` in a checkout, in the sandbox checks run in (the checkout is the
    one folder it may write): "" when it succeeded, else why not."""
    verifier = verifier_at(workflow, workspace)
    tmp = Path(tempfile.mkdtemp(prefix="orchestrator-eval-setup-"))
    try:
        runner = verifier.runner
        argv = ["/bin/sh", "-c", command]
        done, limit = await runner.limited(argv, workspace, tmp, runner.environment(tmp), timeout_s)
    finally:
        verifier.close()
        shutil.rmtree(tmp, ignore_errors=True)
    tail = " ".join(done.output.strip().splitlines()[-3:])[-400:]
    if done.error:
        return f"setup could not run: {done.error}"
    if done.timed_out:
        return f"setup timed out after {timeout_s:g}s"
    if limit is not None:
        return f"setup was stopped by a limit ({limit}, checks_limits)"
    if done.exit_code != 0:
        return f"setup failed (exit {done.exit_code}): {tail}"
    return ""


def selected(tests: Iterable[str], entry: str) -> list[str]:
    """The reported tests an entry names: one test (`tests/test_x.py::test_y`, `test_y`), or every
    test under a file, class or folder it names (`tests/test_x.py`)."""
    tests = list(tests)
    prefix = normalized(entry) + "."
    found = set(matching(tests, entry)) | {t for t in tests if normalized(t).startswith(prefix)}
    return sorted(found)


def merged_tests(runs: Iterable[CheckRun]) -> dict[str, TestStatus]:
    tests: dict[str, TestStatus] = {}
    for run in runs:
        for name, status in (run.tests or {}).items():
            if name not in tests or _RANK[status] > _RANK[tests[name]]:
                tests[name] = status
    return tests


class Judge:
    def __init__(self, instance: Instance, verifier: Verifier, judged: list[str]) -> None:
        self.instance = instance
        self.verifier = verifier
        self.judged = judged
        self.test_files = set(header_paths(instance.test_patch))
        self.before: dict[str, TestStatus] = {}
        self._judged: dict[str, asyncio.Task[dict[str, Any]]] = {}

    def covers(self, path: str) -> bool:
        """The judge's files: the test patch's, the spec's protected ones and pyproject.toml."""
        return path in self.test_files or path == "pyproject.toml" or self.verifier.protection.covers(path)

    async def validate(self) -> str:
        """Whether the instance holds at its base (with the test patch): "" when it does."""
        befores = [await self.verifier.baseline(name) for name in self.judged]
        for run in befores:
            if run.unusable:
                return f"the check {run.name} cannot judge at the base: {run.unusable}"
            if run.tests is None:
                return (
                    f"the check {run.name} reports no per-test results (pytest gets a JUnit report; "
                    "another runner needs checks.NAME.junit)"
                )
        self.before = merged_tests(befores)
        problems = []
        for entry in self.instance.fail_to_pass:
            found = selected(self.before, entry)
            if not found:
                problems.append(f"FAIL_TO_PASS {entry}: no such test at the base")
            elif passing := [t for t in found if self.before[t] != "failed"]:
                problems.append(f"FAIL_TO_PASS {entry} does not fail at the base ({passing[0]})")
        for entry in self.instance.pass_to_pass:
            found = selected(self.before, entry)
            if not found:
                problems.append(f"PASS_TO_PASS {entry}: no such test at the base")
            elif failing := [t for t in found if self.before[t] == "failed"]:
                problems.append(f"PASS_TO_PASS {entry} fails at the base ({failing[0]})")
        return "; ".join(problems[:5]) + (f" and {len(problems) - 5} more" if len(problems) > 5 else "")

    async def judge(self, diff: str) -> dict[str, Any]:
        """A patch's judgement (EvalRun fields): outcome, resolved, reason and the tests."""
        files = header_paths(diff) if diff.strip() else []
        if not files:
            return {"outcome": "no_patch", "reason": "the run proposed no patch"}
        kept, dropped = drop_files(diff, self.covers)
        base: dict[str, Any] = {"patch_files": files, "dropped": dropped}
        if not kept.strip():
            why = f"the patch changes only the judge's files ({', '.join(dropped[:5])}): nothing is left to judge"
            return {**base, "outcome": "judge_only", "reason": why}
        digest = hashlib.sha256(kept.encode("utf-8", "surrogatepass")).hexdigest()
        if digest not in self._judged:
            self._judged[digest] = asyncio.ensure_future(self._judge(kept))
        found = await asyncio.shield(self._judged[digest])
        note = f" (its changes to {', '.join(dropped[:5])} were dropped)" if dropped else ""
        return {**base, **found, "reason": found["reason"] + note}

    async def _judge(self, diff: str) -> dict[str, Any]:
        afters = [await self.verifier.run(name, diff, OWNER) for name in self.judged]
        for run in afters:
            if run.status == "error" and "the patch was not applied" in run.output:
                return {"outcome": "not_applied", "reason": run.output.strip()[:500]}
        unusable = next((run for run in afters if run.unusable), None)
        after = merged_tests(afters)
        return self.grade(after, f"with the patch, {unusable.name}: {unusable.unusable}" if unusable else "")

    def grade(self, after: Mapping[str, TestStatus], problem: str = "") -> dict[str, Any]:
        """SWE-bench's grading of the tests after a patch against the instance's lists."""
        before = self.before
        f2p = [t for e in self.instance.fail_to_pass for t in selected(before, e) if after.get(t) != "passed"]
        kept = ("passed", "skipped")
        p2p = [t for e in self.instance.pass_to_pass for t in selected(before, e) if after.get(t) not in kept]
        broken = sorted(t for t, status in before.items() if status == "passed" and after.get(t) not in kept)
        f2p, p2p = sorted(set(f2p)), sorted(set(p2p))
        resolved = not f2p and not p2p and not problem
        if resolved:
            reason = "every FAIL_TO_PASS test passes and every PASS_TO_PASS test still does"
        else:
            parts = [problem] if problem else []
            if f2p:
                parts.append(f"FAIL_TO_PASS not passing: {_names(f2p)}")
            if p2p:
                parts.append(f"PASS_TO_PASS broken: {_names(p2p)}")
            reason = "; ".join(parts)
        return {
            "outcome": "resolved" if resolved else "unresolved",
            "resolved": resolved,
            "reason": reason,
            "fail_to_pass_failing": f2p[:SHOWN],
            "pass_to_pass_failing": p2p[:SHOWN],
            "tests_broken": len(broken),
            "broken": broken[:SHOWN],
        }

    def close(self) -> None:
        for task in self._judged.values():
            task.cancel()
        self.verifier.close()


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")
