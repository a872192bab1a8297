"""`orchestrator run`, `resume` and `runs`: flags become RunOptions; the runtime owns the run's
lifecycle (checkpoint, cache, recorder, ledger) and the CLI prints progress, the done line and
the GitHub annotations, then exits with the run's status."""

from __future__ import annotations

import asyncio
import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import click

from orchestrator.cli._common import echo, log_options, operator, prepare, setup_logging, table, trust_options
from orchestrator.formats import OUTPUT_FORMATS

if TYPE_CHECKING:
    from orchestrator.engine import Progress
    from orchestrator.outputs import RunResult
    from orchestrator.runtime import RunOptions, RunOutcome
    from orchestrator.workflow import Workflow

SEVERITIES = ["critical", "high", "medium", "low", "info", "none"]
FORMATS = click.Choice(OUTPUT_FORMATS)  # the one list of output formats (a leaf module: no pydantic)


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a spec field")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), help="where outputs go")
@click.option("--format", "formats", multiple=True, type=FORMATS, help="output formats (repeatable)")
@click.option("--fail-on", type=click.Choice(SEVERITIES), help="exit 1 on a finding at or above this severity")
@click.option(
    "--diff-base",
    metavar="REF",
    help="review what changed since the merge base of REF and HEAD ('none': every included file)",
)
@click.option("--record", type=click.Path(file_okay=False, path_type=Path), help="record every model call in DIR")
@click.option("--replay", type=click.Path(file_okay=False, path_type=Path), help="answer every call from DIR")
@click.option("--checkpoint", help="SQLite file or postgres:// URL (default: WORKSPACE/.orchestrator); 'none'")
@click.option("--no-cache", is_flag=True, help="ask the models even when an identical call is cached")
@click.option("--trace", is_flag=True, help="send LangSmith traces (LANGSMITH_* must be set); off by default")
@click.option("--otel", is_flag=True, help="export OpenTelemetry spans (OTEL_EXPORTER_OTLP_*); off by default")
@click.option("--executor", metavar="local|ray[:ADDR]", help="where role nodes' work runs (default: here)")
@click.option("--dry-run", is_flag=True, help="resolve and print the run; call no model")
@click.option("-q", "--quiet", is_flag=True, help="no progress, errors only")
@trust_options
@log_options
def run(
    spec: str,
    overrides: tuple[str, ...],
    output_dir: Path | None,
    formats: tuple[str, ...],
    fail_on: str | None,
    diff_base: str | None,
    record: Path | None,
    replay: Path | None,
    checkpoint: str | None,
    no_cache: bool,
    trace: bool,
    otel: bool,
    executor: str | None,
    dry_run: bool,
    quiet: bool,
    policy: Path | None,
    trusted: bool | None,
    workspace: Path | None,
    log_format: str,
    verbose: int,
) -> None:
    """Run the workflow of SPEC (checkpointed: `orchestrator resume RUN_ID` finishes it).

    Exit 0 ok, 1 quality gate, 2 spec error, 3 provider failure, 4 budget reached,
    5 no model allowed by policy, 130 interrupted (143 on SIGTERM)."""
    from orchestrator.runtime import RunOptions

    setup_logging(log_format, verbose, quiet)
    all_overrides = (*overrides, *([f"fail_on={fail_on}"] if fail_on else []))
    # a quoted YAML string: a revision such as 1234567 stays text
    all_overrides += (f"diff_base={json.dumps(diff_base)}",) if diff_base else ()
    workflow = prepare(spec, all_overrides, operator(policy, trusted, workspace))
    for warning in workflow.warnings:
        echo(f"warning: {warning}", err=True)
    if dry_run:
        from orchestrator.workflow import describe

        click.echo(json.dumps(describe(workflow), indent=2, ensure_ascii=False))
        return
    options = RunOptions(
        output_dir=output_dir,
        formats=list(formats) or None,
        record=record,
        replay=replay,
        checkpoint=_checkpoint(checkpoint),
        cache=not no_cache,
        telemetry=trace,
        otel=otel,
        executor=executor,
    )
    _execute(workflow, options, quiet, resume=False)


def _checkpoint(option: str | None) -> str:
    from orchestrator.runtime import DEFAULT, MEMORY

    return MEMORY if option == "none" else option or DEFAULT


def _execute(workflow: Workflow, options: RunOptions, quiet: bool, resume: bool) -> None:
    """Run or resume with progress on stderr; exit with the run's status."""
    from orchestrator.engine import SilentProgress
    from orchestrator.runtime import new_run_id, run_workflow
    from orchestrator.runtime.progress import LineProgress, LiveProgress, interactive

    options.run_id = options.run_id or new_run_id()
    to_stdout = options.formats == ["json"] and options.output_dir is None
    options.write = not to_stdout
    options.handle_sigterm = True
    if not quiet:
        verb = "resuming" if resume else "run"
        echo(f"{verb} {options.run_id}: {workflow.loaded.spec.name} ({workflow.graph_name})", err=True)
    progress: Progress = SilentProgress() if quiet else (LiveProgress() if interactive() else LineProgress())
    options.progress = progress
    with progress if isinstance(progress, LiveProgress) else nullcontext():
        outcome = run_workflow(workflow, options, resume=resume)
    if to_stdout:
        click.echo(outcome.result.to_json().rstrip())
    _github(outcome.result, workflow.loaded.workspace, to_stdout)
    if not quiet:
        echo(_done_line(outcome), err=True)
    sys.exit(int(outcome.exit_code))


@click.command()
@click.argument("run_id")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="change a field, e.g. a budget")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), help="where outputs go")
@click.option("--no-cache", is_flag=True, help="ask the models even when an identical call is cached")
@click.option("--checkpoint", help="the run's postgres:// URL again, with its password (or set PGPASSWORD)")
@click.option("--executor", metavar="local|ray[:ADDR]", help="where role nodes' work runs (default: here)")
@click.option("-q", "--quiet", is_flag=True, help="no progress, errors only")
@trust_options
@log_options
def resume(
    run_id: str,
    overrides: tuple[str, ...],
    output_dir: Path | None,
    no_cache: bool,
    checkpoint: str | None,
    executor: str | None,
    quiet: bool,
    policy: Path | None,
    trusted: bool | None,
    workspace: Path | None,
    log_format: str,
    verbose: int,
) -> None:
    """Finish an interrupted run from its checkpoint; no subtask that completed runs again.

    `--set limits.max_cost_usd=2` continues a run stopped by its budget."""
    from orchestrator.runtime import RunOptions, prepare_resume

    setup_logging(log_format, verbose, quiet)
    options = RunOptions(
        output_dir=output_dir, cache=not no_cache, checkpoint=_checkpoint(checkpoint), executor=executor
    )
    workflow, options = prepare_resume(run_id, overrides, options, operator(policy, trusted, workspace))
    _execute(workflow, options, quiet, resume=True)


@click.command()
@click.argument("run_id")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), help="default: the run's own")
@click.option("--format", "formats", multiple=True, type=FORMATS, help="default: the run's and html")
def report(run_id: str, output_dir: Path | None, formats: tuple[str, ...]) -> None:
    """Rebuild report.html and the other outputs of a stored run (no spec, no model needed)."""
    from orchestrator.runtime import rebuild_outputs

    written = rebuild_outputs(run_id, output_dir, list(formats) or None)
    for path in written:
        click.echo(str(path))


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def runs(ctx: click.Context, as_json: bool, limit: int) -> None:
    """List the runs on this machine, newest first (`runs prune` forgets old ones)."""
    if ctx.invoked_subcommand is not None:
        return
    from orchestrator.runtime import ledger

    entries = ledger.list_runs(limit)
    if as_json:
        click.echo(json.dumps([e.as_dict() for e in entries], indent=2))
        return
    rows = [
        (e.run_id, e.spec_name, e.status, "" if e.exit_code is None else str(e.exit_code), e.started_at, e.spec_path)
        for e in entries
    ]
    table(("run", "spec", "status", "exit", "started", "spec file"), rows)


@runs.command("prune")
@click.option("--older-than", "age", required=True, help="e.g. 7d, 12h, 2w")
def runs_prune(age: str) -> None:
    """Delete the checkpoints of runs older than AGE and forget them."""
    from orchestrator.errors import SpecError
    from orchestrator.runtime import ledger
    from orchestrator.runtime.checkpoints import prune_checkpoint

    try:
        old = ledger.runs_older_than(ledger.parse_age(age))
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    for entry in old:
        asyncio.run(prune_checkpoint(entry.checkpoint, entry.run_id))
        ledger.forget_run(entry.run_id)
    click.echo(f"pruned {len(old)} run(s) older than {age}")


def _done_line(outcome: RunOutcome) -> str:
    result = outcome.result
    totals = result.totals
    cost = "unknown" if totals.cost_usd is None else f"${totals.cost_usd:.4f}"
    where = f", report in {outcome.written[0].parent}" if outcome.written else ""
    return (
        f"done: {result.status} (exit {int(outcome.exit_code)}), {len(result.subtasks)} subtasks, "
        f"{totals.tokens_in}+{totals.tokens_out} tokens, cost {cost}, {result.duration_ms / 1000:.1f}s{where}"
    )


def _github(result: RunResult, workspace: Path, stdout_is_json: bool) -> None:
    """On GitHub Actions: the step summary, and an ::error annotation per gated finding
    (on stdout as the runner expects, or stderr when stdout carries the JSON result)."""
    from orchestrator.outputs.github import error_commands, in_github_actions, write_step_summary
    from orchestrator.outputs.sarif import repo_prefix

    if not in_github_actions():
        return
    write_step_summary(result)
    for line in error_commands(result, repo_prefix(workspace)):
        click.echo(line, err=stdout_is_json)


COMMANDS = (run, resume, runs, report)
