"""Verification in a run's lifecycle, and without a run: the verifier a spec's checks make (its
sandbox decided once, by `checks.sandbox_mode`, the interpreter found once, the judge's files),
the refusal to start a run whose checks need a sandbox that is not there (exit 2, before any
model call), every verified patch checked together once the graph has finished, the quality
gate of `verify.require`, and `verify_patches` (`orchestrator verify`: no model involved), which
goes through the same preparation as a run: the operator's policy and pull-request rules."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.checks import (
    DEFAULT_PROTECT,
    Combined,
    PatchVerdict,
    Protection,
    Sandbox,
    SandboxInfo,
    VerificationReport,
    Verifier,
    command_files,
    find_interpreter,
    find_sandbox,
    remove_leftovers,
    sandbox_mode,
    shared_paths,
)
from orchestrator.errors import ExitStatus, Interrupted, SpecError
from orchestrator.policy import secret_values
from orchestrator.runtime import checkpoints, ledger
from orchestrator.spec.operator import OperatorPolicy, load_operator
from orchestrator.workflow import Workflow, prepare_workflow

if TYPE_CHECKING:
    from orchestrator.engine.state import CallRecord
    from orchestrator.spec import LoadedSpec
    from orchestrator.spec.operator import Operator

REPLAYED = "a replay: check results come from the recording, nothing runs"


def make_verifier(
    loaded: LoadedSpec,
    secrets: list[str] | None = None,
    recorder: Any = None,
    clock: Callable[[], int] | None = None,
    *,
    policy: OperatorPolicy | None = None,
) -> Verifier | None:
    """The verifier of the spec's checks (None when it declares none); `clock` gives the run's
    milliseconds, on which check runs are timed; `policy` is the operator's (its checks_limits
    and checks_env; by default the one this process's environment names). `loaded` has been
    through `prepare_workflow` (the operator's floor is in its `verify.sandbox`)."""
    spec = loaded.spec
    if not spec.checks:
        return None
    judged = list(spec.verify.checks) if spec.verify.checks is not None else list(spec.checks)
    mode = sandbox_mode(spec.verify.sandbox)
    replaying = recorder is not None and recorder.mode == "replay"
    policy = policy if policy is not None else load_operator().policy
    interpreter = find_interpreter(loaded.workspace)
    readable = [*shared_paths(loaded.workspace), *interpreter.readable]
    sandbox = (
        Sandbox(mode, "none", REPLAYED)
        if replaying
        else find_sandbox(mode, readable, limits=policy.checks_limits, env=policy.checks_env, hidden=own_folders())
    )
    memo = recorder.tool if recorder is not None else None
    secrets = secret_values() if secrets is None else secrets
    checks = dict(spec.checks)
    protection = Protection(
        patterns=tuple(spec.verify.protect) if spec.verify.protect is not None else DEFAULT_PROTECT,
        named=command_files([c.run for c in checks.values()], loaded.workspace),
        allow_changes=spec.verify.allow_test_changes,
    )
    return Verifier(
        loaded.workspace,
        checks,
        judged,
        sandbox,
        spec.limits.check_concurrency,
        secrets,
        clock,
        memo,
        replaying,
        interpreter=interpreter,
        protection=protection,
        targets=spec.verify.target_tests,
    )


def required(loaded: LoadedSpec) -> bool:
    """verify.require: by default, whenever the spec declares checks."""
    spec = loaded.spec
    return bool(spec.checks) if spec.verify.require is None else spec.verify.require and bool(spec.checks)


def quality_gate(verdicts: list[PatchVerdict]) -> str:
    """Why verify.require fails the run ("" when every kept patch is verified)."""
    failing = [v for v in verdicts if v.final and v.verdict != "verified"]
    if not failing:
        return ""
    shown = ", ".join(f"{v.id} {v.verdict}" for v in failing[:5])
    more = f" and {len(failing) - 5} more" if len(failing) > 5 else ""
    return f"verify.require: {len(failing)} proposed patch(es) not verified ({shown}{more})"


def own_folders() -> list[Path]:
    """The orchestrator's own folders, which no check may see: its state (the machine key, the
    run ledger, pull-request mode's data of every repository), the operator's data folder and
    the user's configuration (the operator's policy)."""
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "sovereign-orchestrator"
    folders = [ledger.state_home(), config]
    if os.environ.get(checkpoints.DATA_DIR_ENV):
        folders.append(Path(os.environ[checkpoints.DATA_DIR_ENV]))
    return folders


def refuse_without_sandbox(verifier: Verifier | None) -> None:
    """SpecError (exit 2) when checks must run sandboxed and cannot be: nothing was sent."""
    if verifier is not None and verifier.sandbox.refused and not verifier.replaying:
        raise SpecError(
            f"verify.sandbox is required (the default when CI is set) and there is no sandbox: "
            f"{verifier.sandbox.reason}",
            hint="install bubblewrap (apt-get install bubblewrap), or set verify.sandbox: preferred or off",
        )


def sandbox_warning(verifier: Verifier | None) -> str | None:
    """The loud warning of a run whose checks run without a sandbox (mode preferred)."""
    if verifier is None or verifier.replaying:
        return None
    return unsandboxed_warning(verifier.sandbox.info())


def unsandboxed_warning(sandbox: SandboxInfo) -> str | None:
    """The warning for checks that ran (or will run) without a sandbox in mode preferred."""
    if sandbox.runner == "bubblewrap" or sandbox.mode != "preferred":
        return None
    return (
        f"WARNING: checks run WITHOUT a sandbox ({sandbox.reason}): a proposed patch's code can "
        "write outside its scratch copy and use the network. Install bubblewrap, or set verify.sandbox: required."
    )


def verdict_record(verdict: PatchVerdict, report: VerificationReport, patch: str) -> dict[str, Any]:
    """A patch's verdict and every check, as `orchestrator verify --json` and the MCP server's
    `verify_patch` give them."""
    return {
        "verdict": verdict.verdict,
        "reason": verdict.reason,
        "patch": patch,
        "files": verdict.files,
        "broken": verdict.broken,
        "fixed": verdict.fixed,
        "targets": verdict.targets,
        "touches_tests": verdict.touches_tests,
        "judge_changed": verdict.judge_changed,
        "checks": [c.model_dump() for c in verdict.checks],
        "baselines": [b.model_dump() for b in report.baselines],
        "sandbox": report.sandbox.model_dump(),
        "environment": report.environment.model_dump() if report.environment else None,
        "duration_ms": verdict.duration_ms,
    }


def verdict_exit(verdict: PatchVerdict) -> ExitStatus:
    """`orchestrator verify`'s exit status: 0 verified, 1 not (inconclusive included)."""
    return ExitStatus.OK if verdict.verdict == "verified" else ExitStatus.QUALITY_GATE


async def finish_verification(
    verifier: Verifier, subtasks: list[CallRecord], require: bool = False
) -> VerificationReport:
    """The run's report: every verdict, the verified patches of the kept answers together, and
    the quality gate when `require` (verify.require) holds."""
    verdicts = [v for s in subtasks for v in s.verification]
    diffs = {f"{s.id}-{i}": p.diff for s in subtasks for i, p in enumerate(s.patches(), 1)}
    verified = [v for v in verdicts if v.final and v.verdict == "verified" and v.id in diffs]
    combined: Combined | None = None
    if len(verified) > 1:
        targets = [t for v in verified for t in v.targets]
        combined = await verifier.combine([(v.id, diffs[v.id]) for v in verified], targets)
    elif verified:  # one verified patch is its own combination: the same copy, the same checks
        only = verified[0]
        combined = Combined(patches=[only.id], applied=[only.id], checks=only.checks, verdict="verified")
    await verifier.replay_baselines()
    report = verifier.report(verdicts, combined, await verifier.recorded_sandbox())
    return gated(report, require)


def gated(report: VerificationReport, require: bool) -> VerificationReport:
    """The report with verify.require's quality gate decided."""
    gate = quality_gate(report.patches) if require else ""
    if require and not gate and report.combined is not None and report.combined.verdict != "verified":
        gate = f"verify.require: the verified patches together are {report.combined.verdict}"
    return report.model_copy(update={"require": require, "gate": gate})


def verify_patch(
    spec: LoadedSpec | Workflow, diff: str, *, operator: Operator | None = None, handle_sigterm: bool = False
) -> tuple[PatchVerdict, VerificationReport]:
    """Verify one patch with the spec's checks (no model): its verdict, and the baselines."""
    verdicts, report = verify_patches(spec, [diff], operator=operator, handle_sigterm=handle_sigterm)
    return verdicts[0], report


def verify_patches(
    spec: LoadedSpec | Workflow,
    diffs: list[str],
    *,
    operator: Operator | None = None,
    handle_sigterm: bool = False,
) -> tuple[list[PatchVerdict], VerificationReport]:
    """Verify patches with the spec's checks (no model), as a run does: the spec prepared under
    the operator's policy and pull-request rules (`operator`, by default this process's: a
    check the operator does not admit is refused, a sandbox it requires is required), the
    baseline once, the patches in parallel up to `limits.check_concurrency`, each on a copy of
    its own. Raises SpecError (exit 2) or PolicyError (exit 5) before any check runs. With
    `handle_sigterm`, SIGTERM stops it as Ctrl-C does (Interrupted, exit 143): the checks are
    killed and the scratch copies removed."""
    workflow = spec if isinstance(spec, Workflow) else prepare_workflow(spec, operator)
    loaded = workflow.loaded
    remove_leftovers()
    verifier = make_verifier(loaded, policy=workflow.operator.policy)
    if verifier is None:
        raise SpecError(f"{loaded.path}: the spec declares no checks: add `checks:` to verify patches")
    refuse_without_sandbox(verifier)

    async def go() -> list[PatchVerdict]:
        if handle_sigterm:
            task = asyncio.current_task()
            assert task is not None
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return list(
            await asyncio.gather(
                *(verifier.verify(f"patch-{i}", "patch", None, 0, diff) for i, diff in enumerate(diffs, 1))
            )
        )

    try:
        verdicts = asyncio.run(go())
        report = gated(verifier.report(verdicts, None), required(loaded))
    except asyncio.CancelledError:
        raise Interrupted("verification was stopped by SIGTERM", signal_name="SIGTERM") from None
    finally:
        verifier.close()
    return verdicts, report
