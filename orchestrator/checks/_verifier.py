"""The verifier of a run: the environment probe and each declared check once on the unpatched
copy (the baseline, once per run), each proposed patch on a copy of its own with the judge's
files put back and every judged check before and after (per test when the check reports them),
all verified patches together, and the `run_check` tool's runs, whose result for a patch is
reused when the same bytes are judged. Check processes run at most `limits.check_concurrency` at
a time, every one in the sandbox the mode allows.

Results go through `memo` when there is one (the run's recorder): recorded with `--record`,
served on `--replay`, where no check runs at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from orchestrator.checks._interpreter import Interpreter, find_interpreter
from orchestrator.checks._junit import matching
from orchestrator.checks._patch import apply_patch, rejection
from orchestrator.checks._probe import top_packages
from orchestrator.checks._protect import Protection, command_files, put_back
from orchestrator.checks._records import (
    CheckOutcome,
    CheckRun,
    Combined,
    Conflict,
    Environment,
    PatchVerdict,
    SandboxInfo,
    Verdict,
    VerificationReport,
)
from orchestrator.checks._runner import Runner
from orchestrator.checks._sandbox import Sandbox
from orchestrator.checks._scratch import Scratch, shared_paths
from orchestrator.checks._verdict import cannot_judge, judge, targets_of, verdict_of
from orchestrator.errors import NotRecorded
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
        *,
        interpreter: Interpreter | None = None,
        protection: Protection | None = None,
        targets: Sequence[str] = (),
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
        self.interpreter = interpreter or find_interpreter(self.workspace)
        named = command_files([c.run for c in checks.values()], self.workspace)
        self.protection = protection or Protection(named=named)
        self.targets = list(targets)
        self.runner = Runner(
            self.workspace,
            sandbox,
            self.interpreter,
            self.secrets,
            shared_paths(self.workspace),
            asyncio.Semaphore(concurrency),
            self.offset_ms,
        )
        self._baselines: dict[str, asyncio.Task[CheckRun]] = {}
        self._environment: asyncio.Task[Environment] | None = None
        self._tried: dict[tuple[str, str], CheckRun] = {}  # run_check runs of a patch, by its bytes
        self._scratch: Scratch | None = None
        self.verdicts: list[PatchVerdict] = []

    # ---- the run's checks
    @property
    def scratch(self) -> Scratch:
        if self._scratch is None:
            self._scratch = Scratch(self.workspace, link_shared=not self.sandbox.isolated)
        return self._scratch

    async def environment(self) -> Environment:
        """The interpreter, the copy's ignored files and the probe of the project's packages,
        once per run whoever asks first."""
        if self._environment is None:
            self._environment = asyncio.ensure_future(self._remembered_environment())
        return await asyncio.shield(self._environment)

    async def _remembered_environment(self) -> Environment:
        async def compute() -> dict[str, Any]:
            return (await self._probe()).model_dump()

        return Environment.model_validate(await self._memo({"kind": "environment"}, compute))

    async def _probe(self) -> Environment:
        if self.sandbox.refused:
            raise ChecksRefused(f"verify.sandbox is required and there is no sandbox: {self.sandbox.reason}")
        packages = top_packages(self.workspace)
        copy, tmp = await asyncio.to_thread(self.scratch.copy, "probe")
        try:
            if packages:
                found = await self.runner.probe(copy, tmp, packages)
            else:
                found = Environment(interpreter=str(self.interpreter.python or ""), source=self.interpreter.source)
        finally:
            await asyncio.to_thread(Scratch.remove, copy)
        overlay = self.scratch.overlay
        update = {"ignored_files": overlay.files, "ignored_bytes": overlay.bytes, "left_out": overlay.left_out}
        return found.model_copy(update={**update, "bound": overlay.bound})

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
            run = await self._execute(name, copy, tmp)
            if diff:  # judged later with the same bytes, this run is the verdict's
                self._tried[(name, _digest(diff))] = run
            return run
        finally:
            await asyncio.to_thread(Scratch.remove, copy)

    async def _execute(self, name: str, copy: Path, tmp: Path) -> CheckRun:
        if self.sandbox.refused:
            raise ChecksRefused(f"verify.sandbox is required and there is no sandbox: {self.sandbox.reason}")
        return await self.runner.run(name, self.checks[name], copy, tmp)

    async def _memo(self, request: dict[str, Any], compute: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        if self.memo is None:
            return await compute()
        return await self.memo(request, compute)

    # ---- patches
    async def verify(
        self, patch_id: str, subtask: str, model: str | None, attempt: int, diff: str, named: Sequence[str] = ()
    ) -> PatchVerdict:
        """A patch's verdict: rejected, not applied, inconclusive, or each judged check before and
        after. `named` are tests the task's instruction names (targets when they fail before)."""
        request: dict[str, Any] = {"kind": "verify", "diff": diff, "owner": patch_id, "checks": self.judged}
        if named:
            request["named"] = list(named)

        async def compute() -> dict[str, Any]:
            return (await self._verify_fresh(patch_id, subtask, model, attempt, diff, named)).model_dump()

        verdict = PatchVerdict.model_validate(await self._memo(request, compute))
        verdict = verdict.model_copy(update={"id": patch_id, "subtask": subtask, "model": model, "attempt": attempt})
        self.verdicts.append(verdict)
        return verdict

    async def _verify_fresh(
        self, patch_id: str, subtask: str, model: str | None, attempt: int, diff: str, named: Sequence[str]
    ) -> PatchVerdict:
        base: dict[str, Any] = {"id": patch_id, "subtask": subtask, "model": model, "attempt": attempt}
        environment = await self.environment()
        befores = {} if environment.problem else {name: await self.baseline(name) for name in self.judged}
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
            if environment.problem:  # the checks would not run the patched code: no check is run
                return PatchVerdict(**base, verdict="inconclusive", reason=environment.problem, started_ms=started_ms)
            touched = self.protection.touched(files, self.workspace, copy)
            if touched and not self.protection.allow_changes:
                await asyncio.to_thread(put_back, touched, self.workspace, copy)
            base["touches_tests"] = touched
            base["judge_changed"] = bool(touched) and self.protection.allow_changes
            reusable = not touched or self.protection.allow_changes
            afters = {}
            # a check whose baseline cannot judge is not run again: its word is inconclusive
            for name in (n for n in self.judged if not befores[n].unusable):
                tried = self._tried.get((name, _digest(diff))) if reusable else None
                afters[name] = tried or await self._execute(name, copy, tmp)
        finally:
            await asyncio.to_thread(Scratch.remove, copy)
        targets, missing = self._targets(befores, named)
        outcomes = []
        for name in self.judged:
            if name not in afters:
                outcomes.append(cannot_judge(befores[name]))
                continue
            outcome = judge(befores[name], afters[name], targets.get(name, []))
            outcome.reused = afters[name] is self._tried.get((name, _digest(diff)))
            outcomes.append(outcome)
        verdict, why = verdict_of(outcomes, any(targets.values()))
        broke = any(o.tests and o.tests.broken for o in outcomes)
        if missing and not broke:  # the spec names tests no check runs: its intent cannot be judged
            verdict, why = "inconclusive", f"verify.target_tests not among the tests the checks report: {missing}"
        if touched:
            what = "kept (verify.allow_test_changes)" if base["judge_changed"] else "put back as in the workspace"
            why += f"; the patch changes the judge's files ({', '.join(touched[:5])}): {what}"
        return PatchVerdict(
            **base,
            verdict=verdict,
            reason=why,
            checks=outcomes,
            targets=sorted({t for found in targets.values() for t in found}),
            duration_ms=int((time.perf_counter() - started) * 1000),
            started_ms=started_ms,
        )

    def _targets(self, befores: dict[str, CheckRun], named: Sequence[str]) -> tuple[dict[str, list[str]], str]:
        """Per check, the tests that must go from fail to pass (verify.target_tests and the
        tests the instruction names, when they fail before); and the spec's targets no check
        reports."""
        wanted = [*self.targets, *named]
        targets = {name: targets_of(run, wanted) for name, run in befores.items()}
        reported = [t for run in befores.values() for t in (run.tests or {})]
        missing = [t for t in self.targets if not matching(reported, t)]
        return targets, ", ".join(missing)

    async def combine(self, patches: list[tuple[str, str]], targets: Sequence[str] = ()) -> Combined:
        """Every verified patch (id, diff) applied together on one copy, then checked again;
        `targets` are the tests the patches were verified by (they must pass together too)."""
        request: dict[str, Any] = {"kind": "combined", "patches": [diff for _, diff in patches], "checks": self.judged}
        if targets:
            request["targets"] = sorted(set(targets))

        async def compute() -> dict[str, Any]:
            return (await self._combine_fresh(patches, targets)).model_dump()

        return Combined.model_validate(await self._memo(request, compute))

    async def _combine_fresh(self, patches: list[tuple[str, str]], named: Sequence[str]) -> Combined:
        started, started_ms = time.perf_counter(), self.offset_ms()
        befores = {name: await self.baseline(name) for name in self.judged}
        copy, tmp = await asyncio.to_thread(self.scratch.copy, "combined")
        applied: list[str] = []
        conflicts: list[Conflict] = []
        afters: dict[str, CheckRun] = {}
        try:
            for patch_id, diff in patches:
                problem = await apply_patch(diff, copy)
                if problem:
                    conflicts.append(Conflict(patch=patch_id, message=problem))
                else:
                    applied.append(patch_id)
            if applied and not self.protection.allow_changes:
                files = [f for _, diff in patches for f in (await rejection(diff, self.workspace, copy))[1]]
                touched = self.protection.touched(files, self.workspace, copy)
                await asyncio.to_thread(put_back, touched, self.workspace, copy)
            for name in self.judged if applied else []:
                if not befores[name].unusable:
                    afters[name] = await self._execute(name, copy, tmp)
        finally:
            await asyncio.to_thread(Scratch.remove, copy)
        targets, _ = self._targets(befores, named)
        outcomes = [
            judge(befores[n], afters[n], targets.get(n, [])) if n in afters else cannot_judge(befores[n])
            for n in (self.judged if applied else [])
        ]
        verdict: Verdict
        if not applied:
            verdict = "not_applied"
        elif conflicts:
            verdict = "unverified"
        else:
            verdict = verdict_of(outcomes, any(targets.values()))[0]
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
        with contextlib.suppress(NotRecorded):
            await self.environment()
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
        # per-test maps stay out of result.json: the verdicts keep what changed
        baselines = [t.result().model_copy(update={"tests": None}) for t in done if t.exception() is None]
        probed = self._environment
        environment = None
        if probed is not None and probed.done() and not probed.cancelled() and probed.exception() is None:
            environment = probed.result()
        return VerificationReport(
            judged=list(self.judged),
            sandbox=sandbox or self.sandbox.info(),
            baselines=baselines,
            patches=patches,
            combined=combined,
            replayed=self.replaying,
            environment=environment,
        )

    def close(self) -> None:
        for task in [*self._baselines.values(), *([self._environment] if self._environment else [])]:
            task.cancel()
        if self._scratch is not None:
            self._scratch.close()


def _digest(diff: str) -> str:
    return hashlib.sha256(diff.encode("utf-8", "surrogatepass")).hexdigest()
