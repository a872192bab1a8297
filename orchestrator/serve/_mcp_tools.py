"""The bodies of the four tools. Each spec (a path inside the server's workspace, or an inline
goal with files) goes through `prepare_workflow` under the operator's policy and trust, exactly
as `orchestrator run`, `validate` and `verify` do; the work runs in worker threads (at most
`max_runs` runs and verifications at once) so the server keeps answering."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream
from mcp.server.fastmcp import Context
from mcp.types import CallToolResult

from orchestrator.errors import OrchestratorError, Problem, SpecError, printable
from orchestrator.log import get_logger
from orchestrator.runtime import RunOutcome
from orchestrator.serve._mcp_args import ARGUMENTS_HINT as HINT
from orchestrator.serve._mcp_args import MAX_PATCH, inline_request, inline_spec, spec_path
from orchestrator.serve._mcp_records import run_record, run_text
from orchestrator.serve._mcp_reply import guarded, reply
from orchestrator.serve._mcp_run import RunThread
from orchestrator.spec.operator import Operator
from orchestrator.workflow import Workflow

log = get_logger(__name__)


class Tools:
    def __init__(self, operator: Operator, root: Path, max_runs: int = 2) -> None:
        self.operator = operator
        self.root = root
        self.max_runs = max_runs
        self.active: set[RunThread] = set()
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

    # run_workflow

    async def run_workflow(
        self,
        ctx: Context[Any, Any, Any],
        spec: str | None,
        goal: str | None,
        files: list[str] | None,
        models: dict[str, Any] | str | None,
        graph: str | None,
    ) -> CallToolResult:
        def prepare() -> Workflow:
            from orchestrator.workflow import prepare_workflow

            if spec is not None:
                if any(value is not None for value in (goal, files, models, graph)):
                    problem = Problem("", None, "spec", "give a spec, or a goal with files (not both)")
                    raise SpecError([problem], hint=HINT)
                return self._prepare_spec(spec)
            request = inline_request(goal, files, models, graph, self.root)
            return prepare_workflow(inline_spec(request, self.root), self.operator)

        return await guarded(lambda: self._run(ctx, prepare, inline=spec is None))

    async def _run(self, ctx: Context[Any, Any, Any], prepare: Callable[[], Workflow], inline: bool) -> CallToolResult:
        workflow = await anyio.to_thread.run_sync(prepare)
        loop = asyncio.get_running_loop()
        send, receive = anyio.create_memory_object_stream[str](math.inf)

        def deliver(line: str) -> None:  # on the server's loop; once the call is over, lines go nowhere
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                send.send_nowait(line)

        def post(line: str) -> None:  # from the run's thread (the server's loop may have closed)
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(deliver, line)

        worker = RunThread(workflow, inline, post)
        outcome: RunOutcome | None = None
        failure: OrchestratorError | None = None
        async with anyio.create_task_group() as group:  # (it would wrap an error in an ExceptionGroup)
            group.start_soon(_forward, ctx, receive)
            try:
                post(f"run {worker.run_id}: {printable(workflow.loaded.spec.name)} ({printable(workflow.graph_name)})")
                for warning in workflow.warnings:
                    post(f"warning: {printable(warning)}")
                async with self.limiter:
                    outcome = await self._in_thread(worker)
                post(f"done: {outcome.result.status} (exit status {int(outcome.exit_code)})")
            except OrchestratorError as exc:
                failure = exc
            finally:
                loop.call_soon(send.close)  # after every line already handed over
        if failure is not None:
            raise failure
        assert outcome is not None
        record = run_record(outcome, worker.output_dir)
        record["warnings"] = list(dict.fromkeys([*workflow.warnings, *record["warnings"]]))
        return reply(run_text(record), record, is_error=record["exit_status"] not in (0, 1))

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


async def _forward(ctx: Context[Any, Any, Any], receive: MemoryObjectReceiveStream[str]) -> None:
    """Each line as a progress notification, in order (progress counts the lines)."""
    count = 0
    async with receive:
        async for line in receive:
            count += 1
            try:
                await ctx.report_progress(count, None, line)
            except Exception:  # the client went away or refused it: the run goes on
                log.debug("mcp.progress_not_sent", exc_info=True)
