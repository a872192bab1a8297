"""What a check run can tell, and what the checks say of a patch.

A run cannot judge (`unusable`) when the check did not run (not found, not executable), timed
out or was stopped by a limit, reported no test, pytest ended without judging (exit 2:
interrupted, collection errors; 3: internal error; 4: usage error; 5: no tests collected), or
unittest could not import a test module. A baseline that cannot judge makes the verdict
`inconclusive`: "fail -> fail" would say nothing. A patched run that cannot judge where the
baseline could (the patch broke collection, or made the suite hang) fails the patch.

With per-test reports (JUnit XML) a patch is `unverified` when a test that passed before fails
with it, whatever the exit code says; a check that exits 0 while its report lists failed tests
(an exit status zeroed by a hook) does not pass. With target tests (verify.target_tests, or the
tests a task's instruction names that fail before the patch) a check passes when they pass and
nothing broke, even if other tests still fail: SWE-bench's FAIL_TO_PASS and PASS_TO_PASS.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from orchestrator.checks._junit import changes, failed, matching
from orchestrator.checks._records import CheckOutcome, CheckRun, Verdict

PYTEST_EXITS = {
    2: "pytest was interrupted (errors during collection)",
    3: "pytest had an internal error",
    4: "pytest usage error",
    5: "pytest collected no tests",
}
_PYTEST = re.compile(r"(?:^|[\s/'\"])(?:py\.test|pytest)(?:$|[\s;&|)'\"])")
SHOWN = 5
# what unittest reports for a test module it could not import (its loader's stand-in test)
UNITTEST_IMPORT = "unittest.loader._FailedTest"


def runs_pytest(run: str | list[str]) -> bool:
    """Whether a check's command runs pytest (`pytest`, `python -m pytest`, `py.test`)."""
    text = run if isinstance(run, str) else " ".join(run)
    return _PYTEST.search(text) is not None


def unusable(run: CheckRun, pytest: bool) -> str:
    """Why this run of a check cannot judge anything ("" when it can)."""
    if run.status == "error":
        return f"the check could not run: {run.output.strip().splitlines()[-1][:300] if run.output.strip() else ''}"
    if run.status == "timeout":
        return "the check timed out"
    if run.status == "limit":
        return f"the check was stopped by a limit ({run.limit}, checks_limits)"
    if pytest and run.exit_code in PYTEST_EXITS:
        return f"{PYTEST_EXITS[run.exit_code]} (exit {run.exit_code})"
    if run.status == "fail" and UNITTEST_IMPORT in run.output:
        return "unittest could not import a test module"
    if run.tests is not None and not run.tests:
        return "the check's report lists no test"
    return ""


def targets_of(before: CheckRun, wanted: Sequence[str]) -> list[str]:
    """The reported tests `wanted` names that fail before the patch (those it must fix)."""
    if before.tests is None:
        return []
    found = {t for target in wanted for t in matching(before.tests, target)}
    return sorted(t for t in found if before.tests[t] == "failed")


def cannot_judge(before: CheckRun) -> CheckOutcome:
    """The word of a check whose baseline cannot judge (it is not run with the patch)."""
    problem = f"the baseline cannot judge: {before.unusable}"
    return CheckOutcome(name=before.name, before=before.status, judged="inconclusive", problem=problem)


def judge(before: CheckRun, after: CheckRun, targets: Sequence[str]) -> CheckOutcome:
    """One check's word on a patch: `targets` are its tests that must go from fail to pass."""
    outcome = CheckOutcome(
        name=after.name,
        before=before.status,
        after=after.status,
        exit_code=after.exit_code,
        duration_ms=after.duration_ms,
        started_ms=after.started_ms,
        output=after.output,
        limit=after.limit,
    )
    if before.tests is not None and after.tests is not None:
        outcome.tests = changes(before.tests, after.tests)
    broken = outcome.tests.broken if outcome.tests else []
    after_failed = failed(after.tests) if after.tests is not None else []
    if before.unusable:
        outcome.judged, outcome.problem = "inconclusive", f"the baseline cannot judge: {before.unusable}"
    elif after.unusable:
        outcome.judged, outcome.problem = "fail", f"with the patch, {after.unusable}"
    elif broken:
        count = outcome.tests.counts.get("broken", len(broken)) if outcome.tests else len(broken)
        outcome.judged, outcome.problem = "fail", f"breaks {count} test(s) that passed before: {_names(broken)}"
    elif after.status == "pass" and after_failed:
        outcome.judged = "fail"
        outcome.problem = f"exits 0 but its report lists failed tests: {_names(after_failed)}"
    elif targets:
        still = [t for t in targets if (after.tests or {}).get(t) != "passed"]
        if still:
            outcome.judged, outcome.problem = "fail", f"the target tests still fail: {_names(still)}"
        else:
            outcome.judged = "pass"
    elif after.status == "pass":
        outcome.judged = "pass"
    else:
        outcome.judged, outcome.problem = "fail", f"{before.status} -> {after.status}"
    return outcome


def verdict_of(outcomes: Sequence[CheckOutcome], targeted: bool) -> tuple[Verdict, str]:
    """The patch's verdict from its checks' words, and the reason."""
    failing = [o for o in outcomes if o.judged == "fail"]
    if failing:
        return "unverified", "failing with the patch: " + "; ".join(f"{o.name} {o.problem}" for o in failing)
    unsure = [o for o in outcomes if o.judged == "inconclusive"]
    if unsure:
        return "inconclusive", "; ".join(f"{o.name}: {o.problem}" for o in unsure)
    if targeted:
        return "verified", "the target tests pass and no test that passed before fails"
    return "verified", "every judged check passes"


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
