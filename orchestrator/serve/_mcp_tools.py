"""The bodies of the tools. Each spec (a path inside the server's workspace, or an inline goal
with files) goes through `prepare_workflow` under the operator's policy and trust, exactly as
`orchestrator run`, `validate` and `verify` do; the work runs in worker threads (at most
`max_runs` runs and verifications at once) so the server keeps answering.

`run_workflow` blocks until its run ends, with progress notifications at least every
`HEARTBEAT_S` seconds; `start_workflow` answers with the run id at once and the run goes on as a
job of the server (`_mcp_jobs`), which `get_run` reports on and `cancel_run` stops."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream
from mcp.server.fastmcp import Context
from mcp.types import CallToolResult

from orchestrator.errors import Interrupted, OrchestratorError, Problem, SpecError, StateError, printable
from orchestrator.log import get_logger
from orchestrator.serve._mcp_args import ARGUMENTS_HINT as HINT
from orchestrator.serve._mcp_args import MAX_PATCH, inline_request, inline_spec, spec_path
from orchestrator.serve._mcp_jobs import Job, job_record, ledger_record, prune, status_text
from orchestrator.serve._mcp_records import run_record, run_text
from orchestrator.serve._mcp_reply import guarded, reply
from orchestrator.serve._mcp_resources import RUN_ID
from orchestrator.serve._mcp_run import Event, RunProgress, RunThread, Tally
from orchestrator.spec.operator import Operator

if TYPE_CHECKING:
    from orchestrator.runtime import RunOutcome
    from orchestrator.workflow import Workflow

log = get_logger(__name__)
HEARTBEAT_S = 5.0  # the longest a blocking run_workflow goes without a progress notification
CANCEL_WAIT_S = 40.0  # how long cancel_run waits for a run to write down where it stopped
MAX_WAIT_S = 50.0  # the longest get_run waits for a run to end


class Tools:
    def __init__(self, operator: Operator, root: Path, max_runs: int = 2) -> None:
        self.operator = operator
        self.root = root
        self.max_runs = max_runs
        self.active: set[RunThread] = set()
        self.jobs: dict[str, Job] = {}
        self.group: TaskGroup | None = None  # where jobs run: set while the server serves
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """Runs and verifications at once (made on the server's loop, at the first call)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.max_runs)
        return self._limiter

    # validate_spec

    async def validate_spec(self, spec: str) -> CallToolResult:
        return await guarded(lambda: anyio.to_thread.run_sync(self._validate, spec))

    def _validate(self, spec: str) -> CallToolResult:
        from orchestrator.workflow import describe

        workflow = self._prepare_spec(spec)
        info = describe(workflow)
        lines = [f"ok: {workflow.loaded.path} is valid (graph {info['graph']}, {len(info['files'])} files)"]
        lines += [f"  {role}: {' -> '.join(chain) or '(no allowed model)'}" for role, chain in info["chains"].items()]
        lines += [f"warning: {warning}" for warning in workflow.warnings]
        return reply("\n".join(printable(line) for line in lines), {"valid": True, **info})

    def _prepare_spec(self, spec: str) -> Workflow:
        from orchestrator.spec import load_spec
        from orchestrator.workflow import prepare_workflow

        return prepare_workflow(load_spec(spec_path(spec, self.root, self.operator)), self.operator)

    # list_models

    async def list_models(
        self, country: str | None, strength: str | None, open_weights: bool, provider: str | None
    ) -> CallToolResult:
        return await guarded(
            lambda: anyio.to_thread.run_sync(self._list_models, country, strength, open_weights, provider)
        )

    def _list_models(
        self, country: str | None, strength: str | None, open_weights: bool, provider: str | None
    ) -> CallToolResult:
        from orchestrator.catalog import load_catalog  # the filter of `orchestrator models`

        entries = load_catalog().filter(
            country=country, strength=strength, open_weights=open_weights or None, provider=provider
        )
        lines = [
            f"{e.id}: {e.name} ({e.lab}, {e.country}, {'open weights' if e.open_weights else 'closed weights'}; "
            f"{', '.join(e.strengths) or '-'}) routes: {' '.join(f'{r.provider}/{r.model}' for r in e.routes) or '-'}"
            for e in entries
        ]
        text = "\n".join(printable(line) for line in lines) or "(no model matches)"
        return reply(text, {"count": len(entries), "models": [e.model_dump(mode="json") for e in entries]})

    # verify_patch

    async def verify_patch(self, spec: str, patch: str) -> CallToolResult:
        async def go() -> CallToolResult:
            async with self.limiter:
                return await anyio.to_thread.run_sync(self._verify, spec, patch)

        return await guarded(go)

    def _verify(self, spec: str, patch: str) -> CallToolResult:
        from orchestrator.runtime.verify import unsandboxed_warning, verdict_exit, verdict_record, verify_patch

        if not patch.strip() or len(patch) > MAX_PATCH:
            raise SpecError([Problem("", None, "patch", f"a unified diff of 1 to {MAX_PATCH} characters")], hint=HINT)
        workflow = self._prepare_spec(spec)  # the operator's trust: a check it does not admit is refused
        verdict, report = verify_patch(workflow, patch)
        warning = unsandboxed_warning(report.sandbox)
        record = verdict_record(verdict, report, "patch")
        record["exit_status"] = int(verdict_exit(verdict))
        record["warnings"] = [warning] if warning else []
        lines = [f"{verdict.verdict}: the patch ({verdict.reason}), exit status {record['exit_status']}"]
        lines += [f"  {c.name}: {c.before} -> {c.after or 'not run'}" for c in verdict.checks]
        lines += [warning] if warning else []
        return reply("\n".join(printable(line) for line in lines), record)

    # run_workflow, start_workflow

    def _preparer(
        self,
        spec: str | None,
        goal: str | None,
        files: list[str] | None,
        models: dict[str, Any] | str | None,
        graph: str | None,
    ) -> Callable[[], Workflow]:
        def prepare() -> Workflow:
            from orchestrator.workflow import prepare_workflow

            if spec is not None:
                if any(value is not None for value in (goal, files, models, graph)):
                    problem = Problem("", None, "spec", "give a spec, or a goal with files (not both)")
                    raise SpecError([problem], hint=HINT)
                return self._prepare_spec(spec)
            request = inline_request(goal, files, models, graph, self.root)
            return prepare_workflow(inline_spec(request, self.root), self.operator)

        return prepare

    async def run_workflow(
        self,
        ctx: Context[Any, Any, Any],
        spec: str | None,
        goal: str | None,
        files: list[str] | None,
        models: dict[str, Any] | str | None,
        graph: str | None,
    ) -> CallToolResult:
        prepare = self._preparer(spec, goal, files, models, graph)
        return await guarded(lambda: self._run(ctx, prepare, inline=spec is None))

    async def _run(self, ctx: Context[Any, Any, Any], prepare: Callable[[], Workflow], inline: bool) -> CallToolResult:
        workflow = await anyio.to_thread.run_sync(prepare)
        loop = asyncio.get_running_loop()
        send, receive = anyio.create_memory_object_stream[Event](math.inf)

        def deliver(event: Event) -> None:  # on the server's loop; once the call is over, events go nowhere
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                send.send_nowait(event)

        def post(event: Event) -> None:  # from the run's thread (the server's loop may have closed)
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(deliver, event)

        progress = RunProgress(post)
        worker = RunThread(workflow, inline, progress)
        outcome: RunOutcome | None = None
        failure: OrchestratorError | None = None
        async with anyio.create_task_group() as group:  # (it would wrap an error in an ExceptionGroup)
            group.start_soon(_forward, ctx, receive)
            try:
                name = f"{printable(workflow.loaded.spec.name)} ({printable(workflow.graph_name)})"
                progress.add(Event("note", "", f"run {worker.run_id}: {name}"))
                for warning in workflow.warnings:
                    progress.add(Event("note", "", f"warning: {printable(warning)}"))
                async with self.limiter:
                    outcome = await self._in_thread(worker)
                done = f"done: {outcome.result.status} (exit status {int(outcome.exit_code)})"
                progress.add(Event("done", "", done))
            except OrchestratorError as exc:
                failure = exc
            finally:
                loop.call_soon(send.close)  # after every event already handed over
        if failure is not None:
            raise failure
        assert outcome is not None
        record = run_record(outcome, worker.output_dir)
        record["warnings"] = list(dict.fromkeys([*workflow.warnings, *record["warnings"]]))
        return reply(run_text(record), record, is_error=record["exit_status"] not in (0, 1))

    async def start_workflow(
        self,
        spec: str | None,
        goal: str | None,
        files: list[str] | None,
        models: dict[str, Any] | str | None,
        graph: str | None,
    ) -> CallToolResult:
        prepare = self._preparer(spec, goal, files, models, graph)
        return await guarded(lambda: self._start(prepare, inline=spec is None))

    async def _start(self, prepare: Callable[[], Workflow], inline: bool) -> CallToolResult:
        if self.group is None:
            raise StateError("the server is not serving yet: no run can be started", hint="call again")
        workflow = await anyio.to_thread.run_sync(prepare)
        progress = RunProgress()
        job = Job(RunThread(workflow, inline, progress), workflow, progress)
        name = f"{printable(workflow.loaded.spec.name)} ({printable(workflow.graph_name)})"
        progress.add(Event("note", "", f"run {job.run_id}: {name}"))
        prune(self.jobs)
        self.jobs[job.run_id] = job
        self.group.start_soon(self._job, job)
        await anyio.sleep(0)  # the job takes a free slot now, if there is one
        record = job_record(job)
        lines = [
            f"run {job.run_id} started ({job.state}): {name}",
            "get_run with this run_id reports its progress and, once it has ended, its result "
            "(wait_s waits for the end); cancel_run stops it",
            f"outputs in {record['output_dir']}; run://{job.run_id}/report.md once it has finished",
        ]
        lines += [f"warning: {printable(warning)}" for warning in workflow.warnings]
        return reply("\n".join(lines), record)

    async def _job(self, job: Job) -> None:
        """A started run, as a task of the server: a slot, the run in a thread, its end."""
        try:
            with job.scope:
                async with self.limiter:
                    job.state = "running"
                    job.outcome = await self._in_thread(job.worker)
                    job.state = "finished"
            if job.state == "queued":  # cancelled while it waited for a slot: it never started
                job.state = "cancelled"
        except Interrupted as exc:
            job.state, job.error, job.outcome = "interrupted", exc, exc.outcome
        except OrchestratorError as exc:
            job.state, job.error = "error", exc
        except Exception as exc:  # a bug: this job fails, the server goes on (the traceback goes to the log)
            log.exception("mcp.job_failed", run_id=job.run_id)
            job.state, job.error = "error", StateError(f"internal error (a bug; please report it): {exc!r}")
        finally:
            if not job.over:  # the server is shutting down
                job.state = "interrupted" if job.state == "running" else "cancelled"
            if job.outcome is not None:
                result = job.outcome.result
                job.progress.add(Event("done", "", f"done: {result.status} (exit status {result.exit_code})"))
            job.ended.set()

    # get_run, cancel_run

    async def get_run(self, run_id: str, wait_s: float) -> CallToolResult:
        async def go() -> CallToolResult:
            job = self.jobs.get(_run_id(run_id))
            if job is not None:
                if not job.over and wait_s > 0:
                    with anyio.move_on_after(min(wait_s, MAX_WAIT_S)):
                        await job.ended.wait()
                record = job_record(job)
            else:
                found = await anyio.to_thread.run_sync(ledger_record, run_id)
                if found is None:
                    raise _no_run(run_id)
                record = found
            return reply(status_text(record), record, is_error=record["state"] == "error")

        return await guarded(go)

    async def cancel_run(self, run_id: str) -> CallToolResult:
        async def go() -> CallToolResult:
            job = self.jobs.get(_run_id(run_id))
            if job is None:
                found = await anyio.to_thread.run_sync(ledger_record, run_id)
                if found is None:
                    raise _no_run(run_id)
                if not found["done"]:
                    raise SpecError(
                        [Problem("", None, "run_id", f"run {run_id} was not started by this server")],
                        hint="stop it where it runs (Ctrl-C), or with the server that started it",
                    )
                return reply(status_text(found) + "\n(it had already ended)", found)
            if job.state == "queued":
                job.scope.cancel()
            elif not job.over:
                job.worker.cancel()
            with anyio.move_on_after(CANCEL_WAIT_S):
                await job.ended.wait()
            record = job_record(job)
            return reply(status_text(record), record)

        return await guarded(go)

    async def _in_thread(self, worker: RunThread) -> RunOutcome:
        self.active = {w for w in self.active if not w.done.is_set()} | {worker}
        try:
            outcome: RunOutcome = await anyio.to_thread.run_sync(worker, abandon_on_cancel=True)
        except BaseException:
            if not worker.done.is_set():  # the call was cancelled (or the client went away): stop the run
                worker.cancel()
            raise
        return outcome

    def stop_runs(self) -> list[RunThread]:
        """Stop the runs still going, as Ctrl-C does: each keeps what finished and is resumable
        (safe from a signal handler: nothing waits)."""
        running = [w for w in self.active if not w.done.is_set()]
        for worker in running:
            worker.cancel()
        return running

    def shutdown(self, timeout: float = 60.0) -> None:
        """Stop the runs still going and wait for each to write down where it stopped."""
        for worker in self.stop_runs():
            worker.done.wait(timeout)


def _run_id(text: str) -> str:
    if not RUN_ID.match(text):
        raise SpecError(
            [Problem("", None, "run_id", f"'{printable(text[:130])}' is not a run id")],
            hint="start_workflow answers with the run id; `orchestrator runs` lists them",
        )
    return text


def _no_run(run_id: str) -> SpecError:
    return SpecError(
        [Problem("", None, "run_id", f"no run {run_id} on this machine")],
        hint="start_workflow answers with the run id; `orchestrator runs` lists them",
    )


async def _forward(ctx: Context[Any, Any, Any], receive: MemoryObjectReceiveStream[Event]) -> None:
    """Each event as a progress notification, in order, and a heartbeat naming the calls in
    flight whenever HEARTBEAT_S seconds pass without one (a model call may take minutes)."""
    tally = Tally()
    started = time.monotonic()
    async with receive:
        while True:
            event: Event | None = None
            with anyio.move_on_after(HEARTBEAT_S):
                try:
                    event = await receive.receive()
                except anyio.EndOfStream:
                    return
            if event is None:
                tally.beat()
                message = tally.heartbeat_line(time.monotonic() - started)
            else:
                tally.see(event)
                message = event.line
            try:
                await ctx.report_progress(tally.value, tally.total, message)
            except Exception:  # the client went away or refused it: the run goes on
                log.debug("mcp.progress_not_sent", exc_info=True)
