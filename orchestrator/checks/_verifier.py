"""The verifier of a run: each declared check once on the unpatched copy (the baseline, once per
run), each proposed patch on a copy of its own with every judged check before and after, all
verified patches together, and the `run_check` tool's runs. Check processes run at most
`limits.check_concurrency` at a time, every one in the sandbox the mode allows.

Results go through `memo` when there is one (the run's recorder): recorded with `--record`,
served on `--replay`, where no check runs at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from orchestrator.checks._limits import described, grouped, launcher, limit_hit, pids_group
from orchestrator.checks._patch import apply_patch, rejection
from orchestrator.checks._process import NOT_RUNNABLE, Finished, check_environment, run_command
from orchestrator.checks._records import (
    CheckOutcome,
    CheckRun,
    CheckStatus,
    Combined,
    Conflict,
    PatchVerdict,
    SandboxInfo,
    Verdict,
    VerificationReport,
)
from orchestrator.checks._sandbox import Sandbox
from orchestrator.checks._scratch import Scratch
from orchestrator.errors import NotRecorded
from orchestrator.policy import redact
from orchestrator.spec import CheckSpec

Memo = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]]], Awaitable[dict[str, Any]]]


class ChecksRefused(RuntimeError):
    """A check was asked to run where the sandbox is required and there is none."""


class Verifier:
    def __init__(
        self,
        workspace: Path,
        checks: dict[str, CheckSpec],
        judged: list[str],
        sandbox: Sandbox,
        concurrency: int = 2,
        secrets: list[str] | None = None,
        clock: Callable[[], int] | None = None,
        memo: Memo | None = None,
        replaying: bool = False,
    ) -> None:
        self.workspace = workspace.resolve()
        self.checks = checks
        self.judged = judged
        self.sandbox = sandbox
        self.secrets = list(secrets or [])
        started = time.perf_counter()  # without a run's clock, checks are timed from here
        self.offset_ms: Callable[[], int] = clock or (lambda: int((time.perf_counter() - started) * 1000))
        self.memo = memo
        self.replaying = replaying
        self._slots = asyncio.Semaphore(concurrency)
        self._baselines: dict[str, asyncio.Task[CheckRun]] = {}
        self._scratch: Scratch | None = None
        self.verdicts: list[PatchVerdict] = []

    # ---- the run's checks
    @property
    def scratch(self) -> Scratch:
        if self._scratch is None:
            self._scratch = Scratch(self.workspace)
        return self._scratch

    async def baseline(self, name: str) -> CheckRun:
        """The check on the unpatched workspace, run once per run whoever asks first."""
        if name not in self._baselines:
            self._baselines[name] = asyncio.ensure_future(self._remembered({"kind": "baseline", "check": name}, name))
        return await asyncio.shield(self._baselines[name])

    async def _remembered(self, request: dict[str, Any], name: str) -> CheckRun:
        async def compute() -> dict[str, Any]:
            return (await self._run_fresh(name, None)).model_dump()

        return CheckRun.model_validate(await self._memo(request, compute))

    async def run(self, name: str, diff: str | None, owner: str) -> CheckRun:
        """The `run_check` tool: a check on the workspace as it is, or with `diff` applied."""
        if not diff:
            return await self.baseline(name)
        request = {"kind": "check", "check": name, "diff": diff, "owner": owner}

        async def compute() -> dict[str, Any]:
            return (await self._run_fresh(name, diff)).model_dump()

        return CheckRun.model_validate(await self._memo(request, compute))

    async def _run_fresh(self, name: str, diff: str | None) -> CheckRun:
        """Run one check on a fresh copy (with `diff` applied first, when given)."""
        copy, tmp = await asyncio.to_thread(self.scratch.copy, name)
        try:
            if diff:
                reason, _ = await rejection(diff, self.workspace, copy)
                problem = reason or await apply_patch(diff, copy)
                if problem:
                    return CheckRun(name=name, status="error", output=f"the patch was not applied: {problem}")
            return await self._execute(name, copy, tmp)
        finally:
            await asyncio.to_thread(Scratch.remove, copy)

    async def _execute(self, name: str, copy: Path, tmp: Path) -> CheckRun:
        if self.sandbox.refused:
            raise ChecksRefused(f"verify.sandbox is required and there is no sandbox: {self.sandbox.reason}")
        spec = self.checks[name]
        argv = ["/bin/sh", "-c", spec.run] if isinstance(spec.run, str) else list(spec.run)
        inside_tmp = "/tmp" if self.sandbox.isolated else str(tmp)
        env = check_environment(self.secrets, inside_tmp, passed=self.sandbox.env)
        async with self._slots:
            started_ms = self.offset_ms()
            done, limit = await self._limited(argv, copy, tmp, env, spec.timeout_s)
        output = redact(done.output, self.secrets).replace(str(copy), str(self.workspace))
        status: CheckStatus
        if done.error:
            status, output = "error", done.error
        elif done.timed_out:
            status, output = "timeout", f"{output}\n(killed after {spec.timeout_s:g}s: timeout_s)".lstrip()
        elif done.exit_code == 0:
            status = "pass"
        elif done.exit_code in NOT_RUNNABLE or (self.sandbox.isolated and output.startswith("bwrap:")):
            status = "error"
        elif limit is not None:
            status = "limit"
            output = f"{output}\n(stopped by a limit: {described(limit, self.sandbox.limits)}, checks_limits)".lstrip()
        else:
            status = "fail"
        return CheckRun(
            name=name,
            status=status,
            exit_code=done.exit_code,
            duration_ms=done.duration_ms,
            started_ms=started_ms,
            output=output,
            truncated=done.truncated,
            sandbox=self.sandbox.runner,
            limit=limit if status == "limit" else None,
        )

    async def _limited(
        self, argv: list[str], copy: Path, tmp: Path, env: dict[str, str], timeout_s: float
    ) -> tuple[Finished, str | None]:
        """Run a check under the operator's limits (the launcher's rlimits, and a pids cgroup of
        its own where one can be made), tied to this process by a lifeline (a pipe whose write
        end only this process holds): what it did, and the limit it hit (None: none)."""
        limits, isolated = self.sandbox.limits, self.sandbox.isolated
        lifeline, held = os.pipe()
        inner = launcher(argv, limits, sandboxed=isolated, lifeline=lifeline)
        group = pids_group(limits.processes)
        try:
            command = grouped(self.sandbox.command(inner, copy, tmp), group)
            done = await run_command(command, copy, env, timeout_s, pass_fds=[lifeline])
            return done, limit_hit(done.exit_code, done.output, group)
        finally:
            os.close(lifeline)
            os.close(held)
            if group is not None:
                await asyncio.to_thread(group.remove)

    async def _memo(self, request: dict[str, Any], compute: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        if self.memo is None:
            return await compute()
        return await self.memo(request, compute)

    # ---- patches
    async def verify(self, patch_id: str, subtask: str, model: str | None, attempt: int, diff: str) -> PatchVerdict:
        """A patch's verdict: rejected, not applied, or each judged check before and after."""
        request = {"kind": "verify", "diff": diff, "owner": patch_id, "checks": self.judged}

        async def compute() -> dict[str, Any]:
            return (await self._verify_fresh(patch_id, subtask, model, attempt, diff)).model_dump()

        verdict = PatchVerdict.model_validate(await self._memo(request, compute))
        verdict = verdict.model_copy(update={"id": patch_id, "subtask": subtask, "model": model, "attempt": attempt})
        self.verdicts.append(verdict)
        return verdict

    async def _verify_fresh(
        self, patch_id: str, subtask: str, model: str | None, attempt: int, diff: str
    ) -> PatchVerdict:
        base: dict[str, Any] = {"id": patch_id, "subtask": subtask, "model": model, "attempt": attempt}
        befores = {name: await self.baseline(name) for name in self.judged}
        started, started_ms = time.perf_counter(), self.offset_ms()  # the patch's own time, from here
        copy, tmp = await asyncio.to_thread(self.scratch.copy, patch_id)
        try:
            reason, files = await rejection(diff, self.workspace, copy)
            base["files"] = files
            if reason:
                return PatchVerdict(**base, verdict="rejected", reason=reason, started_ms=started_ms)
            problem = await apply_patch(diff, copy)
            if problem:
                outcomes = [CheckOutcome(name=n, before=b.status) for n, b in befores.items()]
                return PatchVerdict(
                    **base, verdict="not_applied", reason=problem, checks=outcomes, started_ms=started_ms
                )
            outcomes = []
            for name in self.judged:
                after = await self._execute(name, copy, tmp)
                outcomes.append(_outcome(befores[name], after))
        finally:
            await asyncio.to_thread(Scratch.remove, copy)
        verified = all(o.after == "pass" for o in outcomes)
        failing = ", ".join(f"{o.name} {o.before} -> {o.after}" for o in outcomes if o.after != "pass")
        return PatchVerdict(
            **base,
            verdict="verified" if verified else "unverified",
            reason="every judged check passes" if verified else f"failing with the patch: {failing}",
            checks=outcomes,
            duration_ms=int((time.perf_counter() - started) * 1000),
            started_ms=started_ms,
        )

    async def combine(self, patches: list[tuple[str, str]]) -> Combined:
        """Every verified patch (id, diff) applied together on one copy, then checked again."""
        request = {"kind": "combined", "patches": [diff for _, diff in patches], "checks": self.judged}

        async def compute() -> dict[str, Any]:
            return (await self._combine_fresh(patches)).model_dump()

        return Combined.model_validate(await self._memo(request, compute))

    async def _combine_fresh(self, patches: list[tuple[str, str]]) -> Combined:
        started, started_ms = time.perf_counter(), self.offset_ms()
        befores = {name: await self.baseline(name) for name in self.judged}
        copy, tmp = await asyncio.to_thread(self.scratch.copy, "combined")
        applied: list[str] = []
        conflicts: list[Conflict] = []
        try:
            for patch_id, diff in patches:
                problem = await apply_patch(diff, copy)
                if problem:
                    conflicts.append(Conflict(patch=patch_id, message=problem))
                else:
                    applied.append(patch_id)
            outcomes = [_outcome(befores[n], await self._execute(n, copy, tmp)) for n in self.judged] if applied else []
        finally:
            await asyncio.to_thread(Scratch.remove, copy)
        verdict: Verdict
        if not applied:
            verdict = "not_applied"
        else:
            verdict = "verified" if not conflicts and all(o.after == "pass" for o in outcomes) else "unverified"
        return Combined(
            patches=[p for p, _ in patches],
            applied=applied,
            conflicts=conflicts,
            checks=outcomes,
            verdict=verdict,
            duration_ms=int((time.perf_counter() - started) * 1000),
            started_ms=started_ms,
        )

    # ---- the report
    async def replay_baselines(self) -> None:
        """On a replay, the baselines the recording holds (elsewhere they are there once run)."""
        if not self.replaying:
            return
        for name in self.checks:
            with contextlib.suppress(NotRecorded):
                await self.baseline(name)

    async def recorded_sandbox(self) -> SandboxInfo:
        """The sandbox the checks ran in: this one, or on a replay the recorded run's."""

        async def compute() -> dict[str, Any]:
            return self.sandbox.info().model_dump()

        try:
            return SandboxInfo.model_validate(await self._memo({"kind": "sandbox"}, compute))
        except NotRecorded:
            return self.sandbox.info()

    def report(
        self, patches: list[PatchVerdict], combined: Combined | None, sandbox: SandboxInfo | None = None
    ) -> VerificationReport:
        done = [t for _, t in sorted(self._baselines.items()) if t.done() and not t.cancelled()]
        baselines = [t.result() for t in done if t.exception() is None]
        return VerificationReport(
            judged=list(self.judged),
            sandbox=sandbox or self.sandbox.info(),
            baselines=baselines,
            patches=patches,
            combined=combined,
            replayed=self.replaying,
        )

    def close(self) -> None:
        for task in self._baselines.values():
            task.cancel()
        if self._scratch is not None:
            self._scratch.close()


def _outcome(before: CheckRun, after: CheckRun) -> CheckOutcome:
    return CheckOutcome(
        name=after.name,
        before=before.status,
        after=after.status,
        exit_code=after.exit_code,
        duration_ms=after.duration_ms,
        started_ms=after.started_ms,
        output=after.output,
        limit=after.limit,
    )
