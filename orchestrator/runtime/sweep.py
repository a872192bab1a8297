"""`orchestrator sweep`: many runs at once in one process, and one summary of them all.

Each run is an ordinary run (`run_workflow_async`): its own run id, checkpoint thread, ledger
entry and output folder (`OUTPUT_DIR/NN-NAME/`), on the executor the operator chose. At most
`concurrency` runs are in flight. A run that cannot be prepared (a spec error, a policy refusal)
or that fails (the checkpoint store is down, the cluster cannot be reached, a defect) is that
run's row and never stops the others. Ctrl-C (or SIGTERM, with `handle_sigterm`) stops every run
as it stops `orchestrator run`: what finished is checkpointed and written, each run is
resumable with `orchestrator resume RUN_ID`, and runs that had not started are `not_started`.
The sweep's exit status is the one that ranks first (`ExitStatus.precedence`) among its runs'.

Library code: it returns a SweepResult and reports progress through a SweepProgress; it never
prints or exits.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import ExitStatus, Interrupted, OrchestratorError, RunStatus, SpecError
from orchestrator.log import get_logger
from orchestrator.outputs.verification import final_verdicts
from orchestrator.runtime import ledger
from orchestrator.runtime._run import RunOptions, RunOutcome, new_run_id, run_workflow_async, stop_on_sigterm
from orchestrator.spec import load_spec
from orchestrator.spec.operator import Operator, load_operator
from orchestrator.workflow import Workflow, prepare_workflow

log = get_logger(__name__)

MAX_RUNS = 1000  # specs x workspaces of one sweep
DEFAULT_CONCURRENCY = 4
SEVERITIES = ("critical", "high", "medium", "low", "info")
SweepStatus = RunStatus | Literal["error", "not_started"]


@dataclass
class SweepItem:
    """One run of a sweep: a spec, on the operator's workspace (None: the spec's), prepared or not."""

    index: int  # 1-based, in the order the specs and workspaces were given
    spec: str  # the spec file as given
    workspace: Path | None
    label: str  # NN-NAME: the run's folder in the sweep's output folder
    workflow: Workflow | None = None
    error: OrchestratorError | None = None  # why it could not be prepared
    resume: bool = False  # finish the interrupted run `options_for` names (its run id) from its checkpoint


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SweepRow(_Record):
    """What became of one run of the sweep."""

    index: int
    label: str = Field(description="NN-NAME, the run's folder in the sweep's output folder")
    spec: str = Field(description="the spec file as given")
    spec_name: str | None = None
    workspace: str | None = Field(default=None, description="the run's workspace (null: not prepared)")
    run_id: str | None = Field(default=None, description="null when the run never started")
    status: SweepStatus = Field(description="the run's status; error: it failed or could not be prepared")
    exit_code: int
    findings: dict[str, int] = Field(description="severity -> findings of the run's kept answers")
    patches_verified: int = 0
    patches_total: int = Field(default=0, description="patches of the run's kept answers")
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = Field(default=0.0, description="null when unknown (an unpriced API model, a crash)")
    duration_ms: int = 0
    outputs: str | None = Field(default=None, description="the folder the run's outputs were written to")
    result: str | None = Field(default=None, description="the run's result.json, when written")
    error: str | None = None
    hint: str | None = None


class SweepTotals(_Record):
    runs: int
    by_status: dict[str, int]
    findings: dict[str, int]
    patches_verified: int
    patches_total: int
    tokens_in: int
    tokens_out: int
    cost_usd: float | None = Field(description="null when any run's cost is unknown")


class SweepResult(_Record):
    """sweep.json: every run's row, the totals and the sweep's exit status."""

    schema_version: Literal[1] = 1
    sweep_id: str
    started_at: str
    duration_ms: int
    concurrency: int
    exit_code: int = Field(description="the runs' exit code that ranks first (README, exit codes)")
    stopped_by: str | None = Field(default=None, description="SIGINT or SIGTERM when a signal stopped the sweep")
    rows: list[SweepRow]
    totals: SweepTotals

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


class SweepProgress(Protocol):
    def started(self, item: SweepItem, run_id: str) -> None: ...

    def finished(self, row: SweepRow) -> None: ...


class SilentSweepProgress:
    def started(self, item: SweepItem, run_id: str) -> None:
        pass

    def finished(self, row: SweepRow) -> None:
        pass


OptionsFor = Callable[[SweepItem], RunOptions]


def plan_sweep(
    specs: Sequence[str],
    workspaces: Sequence[Path] = (),
    overrides: Sequence[str] = (),
    operator_for: Callable[[Path | None], Operator] | None = None,
) -> list[SweepItem]:
    """One item per spec, or per spec and workspace (every pair), each prepared under the
    operator of its workspace. A preparation error is the item's `error`, not an exception;
    an operator policy that cannot be read, or too many runs, is (SpecError, exit 2)."""
    places: list[Path | None] = list(workspaces) or [None]
    count = len(specs) * len(places)
    if count == 0:
        raise SpecError("a sweep needs at least one spec")
    if count > MAX_RUNS:
        raise SpecError(
            f"a sweep runs at most {MAX_RUNS} runs; {len(specs)} spec(s) x {len(places)} workspace(s) make {count}",
            hint="split it into several sweeps",
        )
    make_operator = operator_for or (lambda workspace: load_operator(workspace=workspace))
    operators = {workspace: make_operator(workspace) for workspace in places}
    width = max(2, len(str(count)))
    items: list[SweepItem] = []
    pairs = [(spec, workspace) for spec in specs for workspace in places]
    for index, (spec, workspace) in enumerate(pairs, 1):
        name = _slug(Path(spec).stem)
        if workspace is not None and len(places) > 1:
            name += f"-{_slug(workspace.resolve().name)}"
        item = SweepItem(index, spec, workspace, f"{index:0{width}d}-{name}")
        try:
            item.workflow = prepare_workflow(load_spec(spec, overrides), operators[workspace])
        except OrchestratorError as exc:
            item.error = exc
        items.append(item)
    return items


def _slug(name: str) -> str:
    """A folder name from a file or folder name (whatever the name holds)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:40] or "run"


def sweep_options(output_dir: Path, **fields: Any) -> OptionsFor:
    """RunOptions for each run of a sweep: a run id of its own, its folder OUTPUT_DIR/NN-NAME,
    and `fields` (checkpoint, cache, executor, formats, ...)."""

    def options_for(item: SweepItem) -> RunOptions:
        return RunOptions(output_dir=output_dir / item.label, run_id=new_run_id(), **fields)

    return options_for


def run_sweep(
    items: Sequence[SweepItem],
    options_for: OptionsFor,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: SweepProgress | None = None,
    sweep_id: str | None = None,
    handle_sigterm: bool = False,
) -> SweepResult:
    """Run every prepared item, at most `concurrency` at once; the rows are in the items' order.
    Ctrl-C stops every run (their rows say so); a second Ctrl-C raises KeyboardInterrupt."""
    return asyncio.run(run_sweep_async(items, options_for, concurrency, progress, sweep_id, handle_sigterm))


async def run_sweep_async(
    items: Sequence[SweepItem],
    options_for: OptionsFor,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: SweepProgress | None = None,
    sweep_id: str | None = None,
    handle_sigterm: bool = False,
) -> SweepResult:
    """Cancelled (Ctrl-C cancels it in `run_sweep`), it stops every run as SIGINT stops `orchestrator
    run` and still returns every row; with `handle_sigterm` a SIGTERM does the same (exit 143)."""
    if concurrency < 1:
        raise SpecError(f"--concurrency must be at least 1 (got {concurrency})")
    progress = progress or SilentSweepProgress()
    started_at = datetime.now(UTC)
    began = time.perf_counter()
    slots = asyncio.Semaphore(concurrency)
    signals: list[str] = []
    if handle_sigterm:
        stop_on_sigterm(signals)
    tasks = [asyncio.create_task(_one(item, options_for, slots, progress)) for item in items]
    stopped_by: str | None = None
    try:
        if tasks:
            await asyncio.wait(tasks)
    except asyncio.CancelledError:  # Ctrl-C or SIGTERM: every run stops as `orchestrator run` does
        stopped_by = signals[0] if signals else "SIGINT"
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)  # each writes what finished (checkpointed) and returns its row
    finally:
        if handle_sigterm:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
    never = Interrupted("stopped before it started")  # a task cancelled before its first step
    rows = [
        _failed(item, never, None, 0, status="not_started") if task.cancelled() else task.result()
        for item, task in zip(items, tasks, strict=True)
    ]
    return SweepResult(
        sweep_id=sweep_id or new_run_id(),
        started_at=started_at.isoformat(timespec="seconds"),
        duration_ms=int((time.perf_counter() - began) * 1000),
        concurrency=concurrency,
        exit_code=int(ranked_exit(_as_stopped(row.exit_code, stopped_by) for row in rows)),
        stopped_by=stopped_by,
        rows=rows,
        totals=sweep_totals(rows),
    )


async def _one(item: SweepItem, options_for: OptionsFor, slots: asyncio.Semaphore, progress: SweepProgress) -> SweepRow:
    if item.workflow is None:
        row = _failed(item, item.error or SpecError("not prepared"), None, 0)
        progress.finished(row)
        return row
    try:
        async with slots:
            options = options_for(item)
            options.run_id = options.run_id or new_run_id()
            options.handle_sigterm = False  # one handler, the sweep's, stops every run
            progress.started(item, options.run_id)
            row = await _attempt(item, item.workflow, options)
    except asyncio.CancelledError:  # stopped while it waited for a slot: it never ran
        row = _failed(item, Interrupted("stopped before it started"), None, 0, status="not_started")
    progress.finished(row)
    return row


async def _attempt(item: SweepItem, workflow: Workflow, options: RunOptions) -> SweepRow:
    began = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - began) * 1000)

    try:
        outcome = await run_workflow_async(workflow, options, resume=item.resume)
    except Interrupted as stopped:  # the run kept what finished; its outcome says so
        if stopped.outcome is not None:
            return outcome_row(item, stopped.outcome)
        return _failed(item, stopped, options.run_id, elapsed(), status="interrupted")
    except asyncio.CancelledError:  # stopped while it was being set up: nothing ran
        run_id = options.run_id or ""
        if options.ledger and (entry := ledger.get_run(run_id)) is not None and entry.status == "running":
            ledger.finish_run(run_id, "interrupted", ExitStatus.INTERRUPTED)
        early = Interrupted("the run was stopped while it was being set up: no model was called")
        return _failed(item, early, run_id, elapsed(), status="interrupted")
    except OrchestratorError as failed:  # refused or failed before any model call (exit 2, 3, 5)
        return _failed(item, failed, options.run_id, elapsed())
    except Exception as crashed:  # a defect in one run must not lose every other run's row
        log.exception("sweep.run_crashed", run_id=options.run_id, spec=item.spec)
        row = _failed(item, OrchestratorError(f"{type(crashed).__name__}: {crashed}"), options.run_id, elapsed())
        return row.model_copy(
            update={
                "exit_code": int(ExitStatus.PROVIDER_FAILURE),
                "cost_usd": None,  # it may have called models before it crashed
                "hint": "a defect of the orchestrator: the traceback is in the log (-v); please report it",
            }
        )
    return outcome_row(item, outcome)


def outcome_row(item: SweepItem, outcome: RunOutcome) -> SweepRow:
    """The row of a run that finished (or was stopped with its outcome written)."""
    result = outcome.result
    verdicts = result.verdicts()  # an ensemble's merged answer speaks for its proposals
    findings: Counter[str] = Counter(f.severity for s in verdicts for f in s.findings())
    verified = sum(1 for v in final_verdicts(result) if v.verdict == "verified")
    written = next((p for p in outcome.written if p.name == "result.json"), None)
    return SweepRow(
        index=item.index,
        label=item.label,
        spec=item.spec,
        spec_name=result.spec.name,
        workspace=result.workspace,
        run_id=result.run_id,
        status=result.status,
        exit_code=int(outcome.exit_code),
        findings={severity: findings[severity] for severity in SEVERITIES},
        patches_verified=verified,
        patches_total=sum(len(s.patches()) for s in verdicts),
        tokens_in=result.totals.tokens_in,
        tokens_out=result.totals.tokens_out,
        cost_usd=result.totals.cost_usd,
        duration_ms=result.duration_ms,
        outputs=str(outcome.written[0].parent) if outcome.written else None,
        result=str(written) if written else None,
    )


def _failed(
    item: SweepItem, error: OrchestratorError, run_id: str | None, duration_ms: int, status: SweepStatus = "error"
) -> SweepRow:
    workflow = item.workflow
    return SweepRow(
        index=item.index,
        label=item.label,
        spec=item.spec,
        spec_name=workflow.loaded.spec.name if workflow else None,
        workspace=str(workflow.loaded.workspace) if workflow else (str(item.workspace) if item.workspace else None),
        run_id=run_id,
        status=status,
        exit_code=int(error.exit_code),
        findings=dict.fromkeys(SEVERITIES, 0),
        duration_ms=duration_ms,
        error=str(error),
        hint=error.hint or None,
    )


def ranked_exit(codes: Iterable[int]) -> ExitStatus:
    """The exit status that wins among the runs' (as `orchestrator run` ranks its own)."""
    present = set(codes)
    return next((status for status in ExitStatus.precedence() if status in present), ExitStatus.OK)


def _as_stopped(code: int, stopped_by: str | None) -> int:
    """A run stopped by the sweep's SIGTERM says 130 in its own result (each run's handler is
    its own); the sweep exits 143 as `orchestrator run` does."""
    return int(ExitStatus.TERMINATED) if stopped_by == "SIGTERM" and code == ExitStatus.INTERRUPTED else code


def sweep_totals(rows: Sequence[SweepRow]) -> SweepTotals:
    costs = [row.cost_usd for row in rows]
    return SweepTotals(
        runs=len(rows),
        by_status=dict(Counter(row.status for row in rows)),
        findings={severity: sum(row.findings.get(severity, 0) for row in rows) for severity in SEVERITIES},
        patches_verified=sum(row.patches_verified for row in rows),
        patches_total=sum(row.patches_total for row in rows),
        tokens_in=sum(row.tokens_in for row in rows),
        tokens_out=sum(row.tokens_out for row in rows),
        cost_usd=None if any(cost is None for cost in costs) else round(sum(c or 0.0 for c in costs), 6),
    )


def write_summary(result: SweepResult, output_dir: Path) -> Path:
    """sweep.json in the sweep's output folder."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "sweep.json"
    path.write_text(result.to_json(), encoding="utf-8")
    return path
