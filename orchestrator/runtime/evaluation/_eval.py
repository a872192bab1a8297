"""`orchestrator eval`: every arm x instance x repeat as an ordinary run, judged by the instance's
tests, and the tables of which arm resolves the most and at what cost.

The steps, each before the next: the instances' clones (`work/ID/base`, and `work/ID/judge` with
the test patch), every run prepared under the operator's policy (a refused arm is a row, no call),
each instance's `setup` in the sandbox and its tests at the base (an instance whose tests do not
hold is left out, no call), the runs on the executor as one sweep (`runs/ARM/ID/rN/`, at most
`concurrency` at once), each run's patch judged, then eval.json, eval.md and eval.html.

With `record` every run's model calls and every check of the judge are written down (with each
run's clock); `replay` serves them all, so the tables come out the same with no model call and no
check run. Library code: it returns the EvalResult; it never prints or exits."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from orchestrator.errors import ExitStatus, SpecError
from orchestrator.models.recording import Recorder
from orchestrator.outputs.evaluation import EvalResult, EvalRun, Objective, Refusal, render_html, render_markdown
from orchestrator.policy.evaluation import refuse_untrusted
from orchestrator.runtime._run import RunOptions, new_run_id
from orchestrator.runtime._stores import DEFAULT
from orchestrator.runtime.evaluation._checkout import Checkout, apply_test_patch, check_out, resolve_commits
from orchestrator.runtime.evaluation._judge import Judge, judged_checks, run_setup, verifier_at
from orchestrator.runtime.evaluation._plan import Planned, decided, mark_started, plan_runs, store
from orchestrator.runtime.evaluation._rows import (
    FINISHED,
    model_patch,
    read_clocks,
    read_result,
    usage_of,
    why_failed,
    with_clock,
    write_clocks,
)
from orchestrator.runtime.evaluation._summary import (
    OBJECTIVES,
    arm_summaries,
    instance_summaries,
    ranked,
    role_summaries,
    winners,
)
from orchestrator.runtime.sweep import SweepItem, SweepRow, ranked_exit, run_sweep_async
from orchestrator.spec import load_spec
from orchestrator.spec.evalfile import LoadedEval
from orchestrator.spec.operator import Operator
from orchestrator.workflow import Workflow


class EvalProgress(Protocol):
    def note(self, text: str) -> None: ...

    def started(self, label: str, run_id: str) -> None: ...

    def judged(self, run: EvalRun) -> None: ...


class SilentEvalProgress:
    def note(self, text: str) -> None:
        pass

    def started(self, label: str, run_id: str) -> None:
        pass

    def judged(self, run: EvalRun) -> None:
        pass


@dataclass
class EvalOptions:
    output_dir: Path
    concurrency: int = 2  # runs at once (and instances set up or judged at once)
    executor: str | None = None  # where the runs' role work runs: local, ray, ray:ADDRESS
    checkpoint: str = DEFAULT
    record: Path | None = None
    replay: Path | None = None
    objective: Objective = "resolved"
    formats: list[str] = field(default_factory=lambda: ["json", "markdown"])  # each run's outputs
    progress: EvalProgress = field(default_factory=SilentEvalProgress)
    handle_sigterm: bool = False


def run_eval(loaded: LoadedEval, operator: Operator, options: EvalOptions) -> EvalResult:
    return asyncio.run(run_eval_async(loaded, operator, options))


async def run_eval_async(loaded: LoadedEval, operator: Operator, options: EvalOptions) -> EvalResult:
    if options.record is not None and options.replay is not None:
        raise SpecError("--record and --replay cannot be used together")
    if options.objective not in OBJECTIVES:
        raise SpecError(f"--objective must be one of {', '.join(OBJECTIVES)}")
    started_at, began = datetime.now(UTC), time.perf_counter()
    refuse_untrusted(loaded, operator)
    load_spec(loaded.spec_path)  # the template's own problems first, with their lines
    commits = resolve_commits(loaded.instances)
    out = options.output_dir
    places = [await asyncio.to_thread(check_out, i, commits[i.id], out / "work" / i.id) for i in loaded.instances]
    for place in places:
        await apply_test_patch(place)
    replaying = options.replay is not None
    reuse = options.record is None and not replaying
    planned = plan_runs(loaded, places, operator, out, reuse=reuse)
    recorders: list[Recorder] = []
    judges: dict[str, Judge] = {}
    try:
        await _judges(loaded, places, planned, options, judges, recorders)
        for one in planned:
            if one.row is None and one.place.problem:
                one.row = decided(one, "invalid", one.place.problem or "")
        stopped_by = await _run(planned, options)
        runs = await _judged(planned, judges, options, stopped_by)
    finally:
        for judge in judges.values():
            judge.close()
        for recorder in recorders:
            recorder.flush()
    if options.record is not None:
        write_clocks(options.record, runs)
    if options.replay is not None:
        clocks = read_clocks(options.replay)
        runs = [with_clock(run, clocks.get(run.label)) if run.run_id else run for run in runs]
    return _result(loaded, places, runs, options, started_at, began, stopped_by)


async def _judges(
    loaded: LoadedEval,
    places: list[Checkout],
    planned: list[Planned],
    options: EvalOptions,
    judges: dict[str, Judge],
    recorders: list[Recorder],
) -> None:
    """Per instance with runs to judge: its setup, its judge (into `judges`), and whether its
    tests hold."""
    slots = asyncio.Semaphore(options.concurrency)

    async def one(place: Checkout) -> None:
        mine = [p.item for p in planned if p.place is place and p.row is None and p.item is not None]
        workflow = mine[0].workflow if mine else None
        if workflow is None or place.problem:
            return
        async with slots:
            if place.instance.setup and options.replay is None:
                options.progress.note(f"{place.instance.id}: setup")
                place.problem = await _setup(place, workflow, loaded.eval.setup_timeout_s)
                if place.problem:
                    return
            recorder = _judge_recorder(options, place.instance.id)
            if recorder is not None:
                recorders.append(recorder)
            verifier = verifier_at(workflow, place.judge, recorder)
            judge = Judge(place.instance, verifier, judged_checks(workflow, loaded.eval.judge))
            judges[place.instance.id] = judge
            place.problem = await judge.validate()
        if place.problem:
            options.progress.note(f"{place.instance.id}: left out: {place.problem}")

    await asyncio.gather(*(one(place) for place in places))


async def _setup(place: Checkout, workflow: Workflow, timeout_s: float) -> str:
    """The instance's setup in `base` (once: kept for the next eval) and in `judge`."""
    command = place.instance.setup or ""
    if not place.setup_done():
        problem = await run_setup(workflow, place.base, command, timeout_s)
        if problem:
            return problem
        place.mark_setup()
    return await run_setup(workflow, place.judge, command, timeout_s)


def _judge_recorder(options: EvalOptions, instance: str) -> Recorder | None:
    if options.record is not None:
        folder = options.record / "judge" / instance
        (folder / "calls").mkdir(parents=True, exist_ok=True)
        return Recorder(folder, "record")
    if options.replay is not None:
        try:
            return Recorder(options.replay / "judge" / instance, "replay")
        except FileNotFoundError as exc:
            raise SpecError(f"--replay: {exc}") from None
    return None


async def _run(planned: list[Planned], options: EvalOptions) -> str | None:
    """The runs still to run, as one sweep; each run's row is kept on its Planned."""
    todo = [one for one in planned if one.to_run]
    by_label = {one.label: one for one in todo}

    def options_for(item: SweepItem) -> RunOptions:
        one = by_label[item.label]
        record = options.record / "runs" / item.label if options.record is not None else None
        return RunOptions(
            output_dir=one.folder,
            formats=list(options.formats),
            run_id=one.run_id or new_run_id(),
            checkpoint=options.checkpoint,
            cache=False,  # a repeat asks the model again
            executor=options.executor,
            record=record,
            replay=options.replay / "runs" / item.label if options.replay is not None else None,
        )

    class Events:
        def started(self, item: SweepItem, run_id: str) -> None:
            one = by_label[item.label]
            one.run_id = run_id
            with contextlib.suppress(OSError):
                mark_started(one, run_id)
            options.progress.started(item.label, run_id)

        def finished(self, row: SweepRow) -> None:
            by_label[row.label].swept = row

    if not todo:
        return None
    items = [one.item for one in todo if one.item is not None]
    swept = await run_sweep_async(
        items, options_for, options.concurrency, Events(), handle_sigterm=options.handle_sigterm
    )
    for one, row in zip(todo, swept.rows, strict=True):
        one.swept = row
    return swept.stopped_by


async def _judged(
    planned: list[Planned], judges: dict[str, Judge], options: EvalOptions, stopped_by: str | None
) -> list[EvalRun]:
    slots = asyncio.Semaphore(options.concurrency)

    async def one(run: Planned) -> EvalRun:
        if run.row is not None:
            return run.row
        async with slots:
            row = await _judge_one(run, judges.get(run.place.instance.id), stopped_by)
        if row.outcome != "not_run":
            with contextlib.suppress(OSError):
                store(run, row)
        options.progress.judged(row)
        return row

    return list(await asyncio.gather(*(one(run) for run in planned)))


async def _judge_one(run: Planned, judge: Judge | None, stopped_by: str | None) -> EvalRun:
    swept = run.swept
    base: dict[str, Any] = {
        "label": run.label,
        "arm": run.arm,
        "instance": run.place.instance.id,
        "repeat": run.repeat,
        "key": run.key,
        "run_id": run.run_id,
        "outputs": str(run.folder),
    }
    result_path = run.result or (Path(swept.result) if swept is not None and swept.result else None)
    result = read_result(result_path) if result_path else None
    if result is None:
        status = swept.status if swept is not None else "not_started"
        if status in ("interrupted", "not_started") or stopped_by is not None:
            why = "stopped before it finished: run the eval again to finish it"
            return EvalRun(
                **base, status=status, exit_code=swept.exit_code if swept else 130, outcome="not_run", reason=why
            )
        error = (swept.error or "the run failed") if swept is not None else "the run failed"
        code = swept.exit_code if swept is not None else int(ExitStatus.PROVIDER_FAILURE)
        return EvalRun(**base, status=status, exit_code=code, outcome="run_failed", reason=error[:500])
    base.update(usage_of(result))
    if result.status == "interrupted":
        return EvalRun(**base, outcome="not_run", reason="stopped before it finished: run the eval again to finish it")
    if stopped_by is not None:  # no check starts once the eval is stopped: the next eval judges it
        return EvalRun(**base, outcome="not_run", reason=f"stopped by {stopped_by} before it was judged")
    diff = model_patch(result)
    if not diff.strip():
        if result.status in FINISHED:
            return EvalRun(**base, outcome="no_patch", reason="the run proposed no patch")
        return EvalRun(**base, outcome="run_failed", reason=why_failed(result))
    if judge is None:
        return EvalRun(**base, outcome="not_run", reason="its instance has no judge")
    return EvalRun(**base, **(await judge.judge(diff)))


def _result(
    loaded: LoadedEval,
    places: Sequence[Checkout],
    runs: list[EvalRun],
    options: EvalOptions,
    started_at: datetime,
    began: float,
    stopped_by: str | None,
) -> EvalResult:
    arms = loaded.eval.arms
    summaries = arm_summaries(runs, arms)
    seen: set[tuple[str, str]] = set()
    refusals = []
    for run in runs:
        if run.outcome == "refused" and (run.arm, run.instance) not in seen:
            seen.add((run.arm, run.instance))
            refusals.append(Refusal(arm=run.arm, instance=run.instance, reason=run.reason))
    codes = [int(ExitStatus.POLICY)] if refusals else []
    # once the eval is stopped, its stop says why runs did not finish (a stopped run says 130 itself)
    unfinished = ("run_failed",) if stopped_by else ("run_failed", "not_run")
    codes += [run.exit_code for run in runs if run.outcome in unfinished]
    if stopped_by:
        codes.append(int(ExitStatus.TERMINATED if stopped_by == "SIGTERM" else ExitStatus.INTERRUPTED))
    shapes = [(p.instance.id, len(p.instance.fail_to_pass), len(p.instance.pass_to_pass)) for p in places]
    problems = {p.instance.id: p.problem for p in places if p.problem}
    return EvalResult(
        name=loaded.eval.name,
        eval_file=str(loaded.path),
        spec=loaded.spec_path.name,
        objective=options.objective,
        repeats=loaded.eval.repeats,
        instances_total=len(places),
        started_at=started_at.isoformat(timespec="seconds"),
        duration_ms=int((time.perf_counter() - began) * 1000),
        exit_code=int(ranked_exit(c for c in codes if c != ExitStatus.QUALITY_GATE)),
        stopped_by=stopped_by,
        replayed=options.replay is not None,
        arms=ranked(summaries, options.objective),
        ranking={objective: [s.arm for s in ranked(summaries, objective)] for objective in OBJECTIVES},
        roles=role_summaries(runs, arms),
        instances=instance_summaries(runs, shapes, problems, list(arms)),
        refusals=refusals,
        winners=winners(summaries, arms, options.objective),
        runs=runs,
    )


def write_eval(result: EvalResult, output_dir: Path) -> list[Path]:
    """eval.json, eval.md and eval.html in the eval's folder."""
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (
        ("eval.json", result.to_json()),
        ("eval.md", render_markdown(result)),
        ("eval.html", render_html(result)),
    ):
        path = output_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
