"""`orchestrator run`, `resume` and `runs`: running workflows and the runs they leave."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click

from orchestrator.cli import _fail, _log_options, _prepare, _setup_logging, _table, handle_errors, main

SEVERITIES = ["critical", "high", "medium", "low", "info", "none"]
FORMATS = ["markdown", "json", "sarif", "junit"]


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a spec field")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), help="where outputs go")
@click.option("--format", "formats", multiple=True, type=click.Choice(FORMATS), help="output formats (repeatable)")
@click.option("--fail-on", type=click.Choice(SEVERITIES), help="exit 1 on a finding at or above this severity")
@click.option("--record", type=click.Path(file_okay=False, path_type=Path), help="record every model call in DIR")
@click.option("--replay", type=click.Path(file_okay=False, path_type=Path), help="answer every call from DIR")
@click.option("--checkpoint", help="SQLite file or postgres:// URL (default: WORKSPACE/.orchestrator); 'none'")
@click.option("--no-cache", is_flag=True, help="ask the models even when an identical call is cached")
@click.option("--trace", is_flag=True, help="send LangSmith traces (LANGSMITH_* must be set); off by default")
@click.option("--dry-run", is_flag=True, help="resolve and print the run; call no model")
@click.option("-q", "--quiet", is_flag=True, help="no progress, errors only")
@_log_options
@handle_errors
def run(
    spec: str,
    overrides: tuple[str, ...],
    output_dir: Path | None,
    formats: tuple[str, ...],
    fail_on: str | None,
    record: Path | None,
    replay: Path | None,
    checkpoint: str | None,
    no_cache: bool,
    trace: bool,
    dry_run: bool,
    quiet: bool,
    log_format: str,
    verbose: int,
) -> None:
    """Run the workflow of SPEC (checkpointed: `orchestrator resume RUN_ID` finishes it).

    Exit 0 ok, 1 quality gate, 2 spec error, 3 provider failure, 4 budget reached,
    5 no model allowed by policy, 130 interrupted (143 on SIGTERM)."""
    _setup_logging(log_format, verbose, quiet)
    if record and replay:
        _fail("--record and --replay cannot be used together")
    all_overrides = (*overrides, *([f"fail_on={fail_on}"] if fail_on else []))
    workflow = _prepare(spec, all_overrides)
    for warning in workflow.warnings:
        click.echo(f"warning: {warning}", err=True)
    if dry_run:
        from orchestrator.workflow import describe

        click.echo(json.dumps(describe(workflow), indent=2, ensure_ascii=False))
        return
    from orchestrator.recording import Recorder
    from orchestrator.run import new_run_id
    from orchestrator.store import data_dir, default_checkpoint, public_location

    try:
        recorder = Recorder(record, "record") if record else Recorder(replay, "replay") if replay else None
    except FileNotFoundError as exc:
        _fail(str(exc))
    location = None if checkpoint == "none" else checkpoint or default_checkpoint(workflow.loaded.workspace)
    cache = None if no_cache else data_dir(workflow.loaded.workspace) / "cache.sqlite"
    run_id = new_run_id()
    if location is not None:
        from orchestrator import ledger

        entry = ledger.RunEntry(
            run_id=run_id,
            spec_name=workflow.loaded.spec.name,
            spec_path=str(Path(spec).resolve()),
            overrides=list(all_overrides),
            checkpoint=public_location(location),  # a Postgres password is not written down
            output_dir=str(output_dir.resolve()) if output_dir else None,
            formats=list(formats) or None,
            status="running",
            exit_code=None,
            started_at=ledger.now(),
            finished_at=None,
        )
        ledger.start_run(entry)
    _execute(workflow, run_id, location, cache, recorder, output_dir, formats, quiet, resume=False, trace=trace)


def _execute(
    workflow: Any,
    run_id: str,
    location: str | None,
    cache: Path | None,
    recorder: Any,
    output_dir: Path | None,
    formats: Sequence[str],
    quiet: bool,
    resume: bool,
    trace: bool = False,
) -> None:
    """Run or resume with progress on stderr; record the outcome in the ledger; exit with its code."""
    from orchestrator.errors import Interrupted, OrchestratorError
    from orchestrator.progress import LineProgress, LiveProgress, interactive
    from orchestrator.run import RunOptions, run_workflow_async
    from orchestrator.state import SilentProgress

    to_stdout = list(formats) == ["json"] and output_dir is None
    if not quiet:
        verb = "resuming" if resume else "run"
        click.echo(f"{verb} {run_id}: {workflow.loaded.spec.name} ({workflow.graph_name})", err=True)
    progress: Any = SilentProgress() if quiet else (LiveProgress() if interactive() else LineProgress())
    options = RunOptions(
        output_dir=output_dir,
        formats=list(formats) or None,
        write=not to_stdout,
        progress=progress,
        run_id=run_id,
        handle_sigterm=True,
        recorder=recorder,
        checkpoint=location,
        cache=cache,
        telemetry=trace,
    )
    try:
        with progress if isinstance(progress, LiveProgress) else nullcontext():
            outcome = asyncio.run(run_workflow_async(workflow, options, resume=resume))
    except Interrupted as stopped:
        _finish(location, run_id, "interrupted", stopped.exit_code)
        raise
    except KeyboardInterrupt:
        _finish(location, run_id, "interrupted", 130)
        raise
    except OrchestratorError as failed:  # e.g. the checkpoint database is down: a resume can try again
        if not resume:
            _finish(location, run_id, "error", failed.exit_code)
        raise
    _finish(location, run_id, outcome.result["status"], outcome.exit_code)
    if to_stdout:
        click.echo(json.dumps(outcome.result, indent=2, ensure_ascii=False))
    _github(outcome.result, workflow.loaded.workspace, to_stdout)
    if not quiet:
        click.echo(_done_line(outcome), err=True)
    sys.exit(outcome.exit_code)


def _finish(location: str | None, run_id: str, status: str, code: int) -> None:
    if location is not None:
        from orchestrator import ledger

        ledger.finish_run(run_id, status, code)


@main.command()
@click.argument("run_id")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="change a field, e.g. a budget")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), help="where outputs go")
@click.option("--no-cache", is_flag=True, help="ask the models even when an identical call is cached")
@click.option("--checkpoint", help="the run's postgres:// URL again, with its password (or set PGPASSWORD)")
@click.option("-q", "--quiet", is_flag=True, help="no progress, errors only")
@_log_options
@handle_errors
def resume(
    run_id: str,
    overrides: tuple[str, ...],
    output_dir: Path | None,
    no_cache: bool,
    checkpoint: str | None,
    quiet: bool,
    log_format: str,
    verbose: int,
) -> None:
    """Finish an interrupted run from its checkpoint; no subtask that completed runs again.

    `--set limits.max_cost_usd=2` continues a run stopped by its budget."""
    from orchestrator import ledger
    from orchestrator.store import data_dir

    _setup_logging(log_format, verbose, quiet)
    entry = ledger.get_run(run_id)
    if entry is None:
        _fail(f"no run {run_id} on this machine", "list the runs with `orchestrator runs`")
    assert entry is not None
    workflow = _prepare(entry.spec_path, (*entry.overrides, *overrides))
    out = output_dir or (Path(entry.output_dir) if entry.output_dir else None)
    cache = None if no_cache else data_dir(workflow.loaded.workspace) / "cache.sqlite"
    location = checkpoint or entry.checkpoint
    _execute(workflow, run_id, location, cache, None, out, entry.formats or [], quiet, resume=True)


@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def runs(ctx: click.Context, as_json: bool, limit: int) -> None:
    """List the runs on this machine, newest first (`runs prune` forgets old ones)."""
    if ctx.invoked_subcommand is not None:
        return
    from orchestrator import ledger

    entries = ledger.list_runs(limit)
    if as_json:
        click.echo(json.dumps([e.as_dict() for e in entries], indent=2))
        return
    rows = [
        (e.run_id, e.spec_name, e.status, "" if e.exit_code is None else str(e.exit_code), e.started_at, e.spec_path)
        for e in entries
    ]
    _table(("run", "spec", "status", "exit", "started", "spec file"), rows)


@runs.command("prune")
@click.option("--older-than", "age", required=True, help="e.g. 7d, 12h, 2w")
@handle_errors
def runs_prune(age: str) -> None:
    """Delete the checkpoints of runs older than AGE and forget them."""
    from orchestrator import ledger
    from orchestrator.store import prune_checkpoint

    try:
        old = ledger.runs_older_than(ledger.parse_age(age))
    except ValueError as exc:
        _fail(str(exc))
    for entry in old:
        asyncio.run(prune_checkpoint(entry.checkpoint, entry.run_id))
        ledger.forget_run(entry.run_id)
    click.echo(f"pruned {len(old)} run(s) older than {age}")


def _done_line(outcome: Any) -> str:
    result = outcome.result
    totals = result["totals"]
    cost = "unknown" if totals["cost_usd"] is None else f"${totals['cost_usd']:.4f}"
    where = f", report in {outcome.written[0].parent}" if outcome.written else ""
    return (
        f"done: {result['status']} (exit {outcome.exit_code}), {len(result['subtasks'])} subtasks, "
        f"{totals['tokens_in']}+{totals['tokens_out']} tokens, cost {cost}, {result['duration_ms'] / 1000:.1f}s{where}"
    )


def _github(result: dict[str, Any], workspace: Path, stdout_is_json: bool) -> None:
    """On GitHub Actions: the step summary, and an ::error annotation per gated finding
    (on stdout as the runner expects, or stderr when stdout carries the JSON result)."""
    from orchestrator.actions import error_commands, in_github_actions, write_step_summary
    from orchestrator.sarif import repo_prefix

    if not in_github_actions():
        return
    write_step_summary(result)
    for line in error_commands(result, repo_prefix(workspace)):
        click.echo(line, err=stdout_is_json)
