"""The typed records of verification: one check run, a check's before/after for a patch, a
patch's verdict, all verified patches together, and the run's report (result.json
`verification`). Engine records (`CallRecord.verification`) and the outputs read these."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.spec.operator import ChecksLimits

CheckStatus = Literal["pass", "fail", "timeout", "error", "limit"]
Verdict = Literal["verified", "unverified", "not_applied", "rejected"]


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

    @property
    def regressed(self) -> bool:
        return self.before == "pass" and self.after not in (None, "pass")

    @property
    def failing(self) -> bool:
        return self.after is not None and self.after != "pass"


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

    @property
    def failing_checks(self) -> list[CheckOutcome]:
        return [c for c in self.checks if c.failing]


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
