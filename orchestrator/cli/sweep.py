"""`orchestrator sweep`: several specs (or one spec over several workspaces) as concurrent runs of
one process, with one line per run started or finished on stderr and one summary of them all on
stdout (a table, or JSON with `--json`; `sweep.json` in the output folder either way). The
runtime (runtime/sweep.py) owns the runs; this module turns flags into options and prints."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from orchestrator.cli._common import echo, log_options, operator, policy_option, setup_logging, table, trusted_option
from orchestrator.cli.run import FORMATS, SEVERITIES


@click.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a field of every spec")
@click.option(
    "--workspace",
    "workspaces",
    multiple=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="run every SPEC on this workspace instead of its own (repeatable: once per workspace)",
)
@click.option("--executor", metavar="local|ray[:ADDR]", help="where role nodes' work runs (default: here)")
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True, help="runs at once")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), help="default: ./sweep-SWEEP_ID")
@click.option("--format", "formats", multiple=True, type=FORMATS, help="each run's output formats")
@click.option("--fail-on", type=click.Choice(SEVERITIES), help="exit 1 on a finding at or above this severity")
@click.option("--checkpoint", help="SQLite file or postgres:// URL (default: WORKSPACE/.orchestrator); 'none'")
@click.option("--no-cache", is_flag=True, help="ask the models even when an identical call is cached")
@click.option("--json", "as_json", is_flag=True, help="the summary as JSON on stdout")
@click.option("-q", "--quiet", is_flag=True, help="no progress, errors only")
@trusted_option("the specs")
@policy_option
@log_options
def sweep(
    specs: tuple[str, ...],
    overrides: tuple[str, ...],
    workspaces: tuple[Path, ...],
    executor: str | None,
    concurrency: int,
    output_dir: Path | None,
    formats: tuple[str, ...],
    fail_on: str | None,
    checkpoint: str | None,
    no_cache: bool,
    as_json: bool,
    quiet: bool,
    policy: Path | None,
    trusted: bool | None,
    log_format: str,
    verbose: int,
) -> None:
    """Run every SPEC (on every --workspace: each pair) as concurrent runs; one summary of them all.

    Each run is checkpointed, listed and resumable like `orchestrator run`, with its outputs in
    OUTPUT_DIR/NN-NAME/. A spec that cannot be prepared is its row's error (exit 2), not the
    sweep's end. Exit with the runs' code that ranks first: 2, 5, 130/143, 4, 3, 1, 0."""
    from orchestrator.errors import SpecError
    from orchestrator.runtime import DEFAULT, MEMORY, new_run_id
    from orchestrator.runtime.sweep import plan_sweep, run_sweep, sweep_options, write_summary

    setup_logging(log_format, verbose, quiet)
    all_overrides = (*overrides, *([f"fail_on={fail_on}"] if fail_on else []))
    items = plan_sweep(specs, workspaces, all_overrides, lambda place: operator(policy, trusted, place))
    sweep_id = new_run_id()
    folder = output_dir or Path(f"sweep-{sweep_id}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpecError(f"--output-dir: cannot create {folder}: {exc.strerror or exc}") from None
    if not quiet:
        for item in items:
            for warning in item.workflow.warnings if item.workflow else []:
                echo(f"warning: {item.label}: {warning}", err=True)
        echo(f"sweep {sweep_id}: {len(items)} run(s), {concurrency} at once, outputs in {folder}", err=True)
    options_for = sweep_options(
        folder,
        formats=list(formats) or None,
        checkpoint=MEMORY if checkpoint == "none" else checkpoint or DEFAULT,
        cache=not no_cache,
        executor=executor,
    )
    result = run_sweep(items, options_for, concurrency, _Lines(quiet), sweep_id, handle_sigterm=True)
    summary = write_summary(result, folder)
    if as_json:
        click.echo(result.to_json().rstrip())
    else:
        _table(result, folder)
    if not quiet:
        stopped = f", stopped by {result.stopped_by}" if result.stopped_by else ""
        echo(f"sweep done (exit {result.exit_code}{stopped}), summary in {summary}", err=True)
    sys.exit(result.exit_code)


class _Lines:
    """One line on stderr per run started and per run finished; errors even when quiet."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def started(self, item: Any, run_id: str) -> None:
        if not self.quiet:
            name = item.workflow.loaded.spec.name if item.workflow else item.spec
            echo(f"started {item.label}: {name}, run {run_id}", err=True)

    def finished(self, row: Any) -> None:
        if row.error:
            hint = f" ({row.hint})" if row.hint else ""
            echo(f"error: {row.label}: {row.status} (exit {row.exit_code}): {row.error}{hint}", err=True)
            return
        if not self.quiet:
            resume = f"; `orchestrator resume {row.run_id}` finishes it" if row.status == "interrupted" else ""
            echo(
                f"finished {row.label}: {row.status} (exit {row.exit_code}), findings {_findings(row.findings)}, "
                f"{row.patches_verified}/{row.patches_total} patch(es) verified, {row.tokens_in}+{row.tokens_out} "
                f"tokens, cost {_cost(row.cost_usd)}, {row.duration_ms / 1000:.1f}s{resume}",
                err=True,
            )


def _table(result: Any, folder: Path) -> None:
    rows = [
        (
            row.label,
            row.spec_name or row.spec,
            _where(row.workspace),
            row.run_id or "-",
            row.status,
            str(row.exit_code),
            _findings(row.findings),
            f"{row.patches_verified}/{row.patches_total}",
            f"{row.tokens_in}+{row.tokens_out}",
            _cost(row.cost_usd),
            f"{row.duration_ms / 1000:.1f}s",
            _where(row.outputs) if row.outputs else (row.error or "-").splitlines()[0],
        )
        for row in result.rows
    ]
    totals = result.totals
    statuses = ", ".join(f"{count} {status}" for status, count in totals.by_status.items())
    rows.append(
        (
            "total",
            f"{totals.runs} run(s)",
            "",
            "",
            statuses,
            str(result.exit_code),
            _findings(totals.findings),
            f"{totals.patches_verified}/{totals.patches_total}",
            f"{totals.tokens_in}+{totals.tokens_out}",
            _cost(totals.cost_usd),
            f"{result.duration_ms / 1000:.1f}s",
            _where(str(folder)),
        )
    )
    header = ("run", "spec", "workspace", "run id", "status", "exit", "findings", "patches")
    table((*header, "tokens", "cost", "time", "outputs"), rows)


def _findings(by_severity: dict[str, int]) -> str:
    found = [f"{count} {severity}" for severity, count in by_severity.items() if count]
    return ", ".join(found) or "0"


def _cost(cost: float | None) -> str:
    return "unknown" if cost is None else f"${cost:.4f}"


def _where(path: str | None) -> str:
    """A path as short as it is clear: relative to the current folder when inside it."""
    if not path:
        return "-"
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else path
    except (OSError, ValueError):
        return path


COMMANDS: list[click.Command] = [sweep]
