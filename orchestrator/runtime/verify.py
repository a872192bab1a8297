"""Verification in a run's lifecycle, and without a run: the verifier a spec's checks make (its
sandbox decided once, by `checks.sandbox_mode`), the refusal to start a run whose checks need a
sandbox that is not there (exit 2, before any model call), every verified patch checked together
once the graph has finished, and `verify_patch` (`orchestrator verify`: no model involved)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.checks import (
    Combined,
    PatchVerdict,
    Sandbox,
    SandboxInfo,
    VerificationReport,
    Verifier,
    find_sandbox,
    remove_leftovers,
    sandbox_mode,
    shared_paths,
)
from orchestrator.errors import ExitStatus, Interrupted, SpecError
from orchestrator.policy import secret_values
from orchestrator.runtime import checkpoints, ledger
from orchestrator.spec.operator import OperatorPolicy, load_operator

if TYPE_CHECKING:
    from orchestrator.engine.state import CallRecord
    from orchestrator.spec import LoadedSpec

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
    and checks_env; by default the one this process's environment names)."""
    spec = loaded.spec
    if not spec.checks:
        return None
    judged = list(spec.verify.checks) if spec.verify.checks is not None else list(spec.checks)
    mode = sandbox_mode(spec.verify.sandbox)
    replaying = recorder is not None and recorder.mode == "replay"
    policy = policy if policy is not None else load_operator().policy
    sandbox = (
        Sandbox(mode, "none", REPLAYED)
        if replaying
        else find_sandbox(
            mode,
            shared_paths(loaded.workspace),
            limits=policy.checks_limits,
            env=policy.checks_env,
            hidden=own_folders(),
        )
    )
    memo = recorder.tool if recorder is not None else None
    secrets = secret_values() if secrets is None else secrets
    concurrency = spec.limits.check_concurrency
    checks = dict(spec.checks)
    return Verifier(loaded.workspace, checks, judged, sandbox, concurrency, secrets, clock, memo, replaying)


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
        "checks": [c.model_dump() for c in verdict.checks],
        "baselines": [b.model_dump() for b in report.baselines],
        "sandbox": report.sandbox.model_dump(),
        "duration_ms": verdict.duration_ms,
    }


def verdict_exit(verdict: PatchVerdict) -> ExitStatus:
    """`orchestrator verify`'s exit status: 0 verified, 1 not."""
    return ExitStatus.OK if verdict.verdict == "verified" else ExitStatus.QUALITY_GATE


async def finish_verification(verifier: Verifier, subtasks: list[CallRecord]) -> VerificationReport:
    """The run's report: every verdict, and the verified patches of the kept answers together."""
    verdicts = [v for s in subtasks for v in s.verification]
    diffs = {f"{s.id}-{i}": p.diff for s in subtasks for i, p in enumerate(s.patches(), 1)}
    verified = [v for v in verdicts if v.final and v.verdict == "verified" and v.id in diffs]
    combined: Combined | None = None
    if len(verified) > 1:
        combined = await verifier.combine([(v.id, diffs[v.id]) for v in verified])
    elif verified:  # one verified patch is its own combination: the same copy, the same checks
        only = verified[0]
        combined = Combined(patches=[only.id], applied=[only.id], checks=only.checks, verdict="verified")
    await verifier.replay_baselines()
    return verifier.report(verdicts, combined, await verifier.recorded_sandbox())


def verify_patch(
    loaded: LoadedSpec, diff: str, *, handle_sigterm: bool = False
) -> tuple[PatchVerdict, VerificationReport]:
    """Verify one patch with the spec's checks (no model): its verdict, and the baselines."""
    verdicts, report = verify_patches(loaded, [diff], handle_sigterm=handle_sigterm)
    return verdicts[0], report


def verify_patches(
    loaded: LoadedSpec, diffs: list[str], *, handle_sigterm: bool = False
) -> tuple[list[PatchVerdict], VerificationReport]:
    """Verify patches with the spec's checks (no model), as a run does: the baseline once, the
    patches in parallel up to `limits.check_concurrency`, each on a copy of its own. With
    `handle_sigterm`, SIGTERM stops it as Ctrl-C does (Interrupted, exit 143): the checks are
    killed and the scratch copies removed."""
    remove_leftovers()
    verifier = make_verifier(loaded)
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
        report = verifier.report(verdicts, None)
    except asyncio.CancelledError:
        raise Interrupted("verification was stopped by SIGTERM", signal_name="SIGTERM") from None
    finally:
        verifier.close()
    return verdicts, report
