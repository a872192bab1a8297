"""The typed records of verification: one check run, a check's before/after for a patch, a
patch's verdict, all verified patches together, and the run's report (result.json
`verification`). Engine records (`CallRecord.verification`) and the outputs read these."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.spec.operator import ChecksLimits

CheckStatus = Literal["pass", "fail", "timeout", "error", "limit"]
Verdict = Literal["verified", "unverified", "inconclusive", "not_applied", "rejected"]
TestStatus = Literal["passed", "failed", "skipped"]
Judgement = Literal["pass", "fail", "inconclusive"]
# how many test names a list of a verdict keeps (the counts are always whole)
TEST_NAMES = 100


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CheckRun(_Record):
    """One run of one check on one scratch copy."""

    name: str
    status: CheckStatus = Field(
        description="pass (exit 0) | fail | timeout (killed at timeout_s) | error (not run) | limit (stopped by one)"
    )
    exit_code: int | None = None
    duration_ms: int = 0
    started_ms: int = Field(default=0, description="start, in ms since the run started")
    output: str = Field(default="", description="stdout and stderr, bounded (head and tail kept), secrets masked")
    truncated: bool = False
    sandbox: str = Field(default="none", description="bubblewrap | none")
    limit: str | None = Field(default=None, description="status limit: the one hit (a field of checks_limits)")
    tests: dict[str, TestStatus] | None = Field(
        default=None, description="per test, from the JUnit XML report the check wrote (null: none)"
    )
    unusable: str = Field(
        default="", description="why this run cannot judge (collection or usage error, no tests, timeout, ...)"
    )


class PerTestChanges(_Record):
    """A check's tests before and after a patch (from its JUnit reports); each list keeps at
    most TEST_NAMES names, `counts` has every one."""

    fixed: list[str] = Field(default_factory=list, description="failed before, pass with the patch")
    broken: list[str] = Field(default_factory=list, description="passed before, fail with the patch")
    still_failing: list[str] = Field(default_factory=list)
    added: list[str] = Field(default_factory=list, description="not run before, run with the patch")
    removed: list[str] = Field(default_factory=list, description="run before, not run with the patch")
    counts: dict[str, int] = Field(default_factory=dict, description="the length of each list, uncut")


class CheckOutcome(_Record):
    """A judged check for one patch: on the unpatched copy (baseline) and with the patch."""

    name: str
    before: CheckStatus
    after: CheckStatus | None = Field(default=None, description="null when the patch was not applied")
    exit_code: int | None = None
    duration_ms: int = 0
    started_ms: int = 0
    output: str = Field(default="", description="the output with the patch (bounded)")
    limit: str | None = Field(default=None, description="after is limit: the one hit (a field of checks_limits)")
    judged: Judgement | None = Field(
        default=None, description="what this check says of the patch (null in records older than it: after == pass)"
    )
    problem: str = Field(default="", description="why the check does not judge the patch good")
    tests: PerTestChanges | None = Field(default=None, description="per test, when the check reports them")
    reused: bool = Field(default=False, description="the run_check run of the same patch bytes, not run again")

    @property
    def good(self) -> bool:
        return self.judged == "pass" if self.judged is not None else self.after == "pass"

    @property
    def regressed(self) -> bool:
        broken = bool(self.tests and self.tests.broken)
        return broken or (self.before == "pass" and self.after not in (None, "pass"))

    @property
    def failing(self) -> bool:
        return self.after is not None and not self.good


class PatchVerdict(_Record):
    """What the checks said about one proposed patch."""

    id: str = Field(description="SUBTASK-N for a final answer's patch N; SUBTASK-N@A for attempt A before it")
    subtask: str
    model: str | None = None
    attempt: int = Field(default=0, description="0 for the first answer, then one per reflection")
    final: bool = Field(default=True, description="the patch of the answer the subtask kept")
    files: list[str] = Field(default_factory=list)
    verdict: Verdict
    reason: str = ""
    checks: list[CheckOutcome] = Field(default_factory=list)
    duration_ms: int = 0
    started_ms: int = 0
    touches_tests: list[str] = Field(
        default_factory=list, description="files of the judge (verify.protect) the patch changes"
    )
    judge_changed: bool = Field(
        default=False, description="the patch's changes to the judge were kept (verify.allow_test_changes)"
    )
    targets: list[str] = Field(default_factory=list, description="the tests that must pass with the patch")

    @property
    def failing_checks(self) -> list[CheckOutcome]:
        return [c for c in self.checks if c.failing]

    @property
    def broken(self) -> list[str]:
        """The tests that passed before and fail with the patch, every check's."""
        return [name for c in self.checks if c.tests for name in c.tests.broken]

    @property
    def fixed(self) -> list[str]:
        return [name for c in self.checks if c.tests for name in c.tests.fixed]


class Conflict(_Record):
    patch: str
    message: str


class Combined(_Record):
    """Every verified patch applied together once, and checked again."""

    patches: list[str] = Field(default_factory=list, description="the verified patches, in order")
    applied: list[str] = Field(default_factory=list)
    conflicts: list[Conflict] = Field(default_factory=list)
    checks: list[CheckOutcome] = Field(default_factory=list)
    verdict: Verdict
    duration_ms: int = 0
    started_ms: int = 0


class ImportedFrom(_Record):
    """Where the check's interpreter imports one of the workspace's top-level packages from."""

    package: str
    path: str = Field(default="", description="its __file__ (or first __path__ entry); empty when it did not import")
    in_copy: bool = Field(default=False, description="the path is inside the scratch copy (the patched code)")
    error: str = Field(default="", description="why it did not import")


class Environment(_Record):
    """How checks see the project: the interpreter found for them, what of the workspace the
    scratch copy holds besides the files git knows, and the probe of its packages."""

    interpreter: str = Field(default="", description="the `python` a check runs (empty: none found)")
    source: str = Field(default="", description="where it was found: the workspace's .venv, VIRTUAL_ENV, PATH")
    version: str = ""
    packages: list[ImportedFrom] = Field(default_factory=list, description="the probe: each top-level package")
    problem: str = Field(default="", description="why the checks cannot judge the patched code (inconclusive)")
    notes: list[str] = Field(default_factory=list)
    ignored_files: int = Field(default=0, description="files git ignores that were copied into the scratch copy")
    ignored_bytes: int = 0
    left_out: list[str] = Field(default_factory=list, description="ignored folders not copied (caches, environments)")
    bound: str = Field(default="", description="the size bound on ignored files, when it was hit")


class SandboxInfo(_Record):
    mode: Literal["required", "preferred", "off"]
    runner: Literal["bubblewrap", "none"]
    reason: str = Field(default="", description="why there is no sandbox, when there is none")
    limits: ChecksLimits = Field(default_factory=ChecksLimits, description="the resource limits of each check")
    unbounded: list[str] = Field(default_factory=list, description="the limits that cannot hold here")


class VerificationReport(_Record):
    """result.json `verification`: the checks that judged patches, their baselines, every
    verdict and the verified patches together."""

    judged: list[str] = Field(description="the checks that judge a patch (verify.checks)")
    sandbox: SandboxInfo
    baselines: list[CheckRun] = Field(default_factory=list, description="each check once on the unpatched copy")
    patches: list[PatchVerdict] = Field(default_factory=list)
    combined: Combined | None = None
    replayed: bool = Field(default=False, description="check results came from a recording; nothing ran")
    environment: Environment | None = Field(default=None, description="the interpreter, the copy and the probe")
    require: bool = Field(default=False, description="verify.require: a patch not verified fails the run")
    gate: str = Field(default="", description="why verify.require fails the run (exit 1), when it does")
