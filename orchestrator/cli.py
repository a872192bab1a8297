"""The `orchestrator` command. The only place that prints, configures logging and exits.

Heavy modules (pydantic models, LangGraph, provider SDKs) are imported inside the commands
that need them, so `orchestrator --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
EXIT_INTERRUPTED = 130


def _fail(message: str, hint: str = "", code: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn the orchestrator's exceptions into a message and their exit code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from orchestrator.errors import OrchestratorError

        try:
            return func(*args, **kwargs)
        except OrchestratorError as exc:
            outcome = getattr(exc, "outcome", None)
            if outcome is not None and outcome.written:
                click.echo(f"partial outputs in {outcome.written[0].parent}", err=True)
            _fail(str(exc), exc.hint, exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", code=EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sovereign-orchestrator")
def main() -> None:
    """Run coding workflows across many LLMs: a planner splits the goal, role nodes run on the
    models suited to them, and the planner aggregates one report."""


def _log_options(func: F) -> F:
    func = click.option(
        "--log-format", type=click.Choice(["auto", "console", "json"]), default="auto", show_default=True
    )(func)
    func = click.option("-v", "--verbose", count=True, help="-v info, -vv debug logs on stderr")(func)
    return func


def _setup_logging(log_format: str, verbose: int, quiet: bool = False) -> None:
    from orchestrator.log import configure_logging

    level = "error" if quiet else {0: "warning", 1: "info"}.get(verbose, "debug")
    configure_logging(log_format, level)


def _prepare(spec_path: str, overrides: tuple[str, ...]) -> Any:
    from orchestrator.spec import load_spec
    from orchestrator.workflow import prepare_workflow

    return prepare_workflow(load_spec(spec_path, overrides))


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
    dry_run: bool,
    quiet: bool,
    log_format: str,
    verbose: int,
) -> None:
    """Run the workflow of SPEC.

    Exit 0 ok, 1 quality gate, 2 spec error, 3 provider failure, 4 budget reached,
    5 no model allowed by policy, 130 interrupted (143 on SIGTERM)."""
    _setup_logging(log_format, verbose, quiet)
    if record and replay:
        _fail("--record and --replay cannot be used together")
    workflow = _prepare(spec, (*overrides, *([f"fail_on={fail_on}"] if fail_on else [])))
    for warning in workflow.warnings:
        click.echo(f"warning: {warning}", err=True)
    if dry_run:
        from orchestrator.workflow import describe

        click.echo(json.dumps(describe(workflow), indent=2, ensure_ascii=False))
        return
    from orchestrator.progress import LineProgress, LiveProgress, interactive
    from orchestrator.recording import Recorder
    from orchestrator.run import RunOptions, new_run_id, run_workflow
    from orchestrator.state import SilentProgress

    try:
        recorder = Recorder(record, "record") if record else Recorder(replay, "replay") if replay else None
    except FileNotFoundError as exc:
        _fail(str(exc))
    to_stdout = list(formats) == ["json"] and output_dir is None
    run_id = new_run_id()
    if not quiet:
        click.echo(f"run {run_id}: {workflow.loaded.spec.name} ({workflow.graph_name})", err=True)
    progress: Any = SilentProgress() if quiet else (LiveProgress() if interactive() else LineProgress())
    options = RunOptions(
        output_dir=output_dir,
        formats=list(formats) or None,
        write=not to_stdout,
        progress=progress,
        run_id=run_id,
        handle_sigterm=True,
        recorder=recorder,
    )
    with progress if isinstance(progress, LiveProgress) else nullcontext():
        outcome = run_workflow(workflow, options)
    if to_stdout:
        click.echo(json.dumps(outcome.result, indent=2, ensure_ascii=False))
    _github(outcome.result, workflow.loaded.workspace, to_stdout)
    if not quiet:
        click.echo(_done_line(outcome), err=True)
    sys.exit(outcome.exit_code)


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


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE")
@click.option("--json", "as_json", is_flag=True, help="print the resolved workflow as JSON")
@handle_errors
def validate(spec: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """Check SPEC, its graph, models and policy. Calls no model."""
    from orchestrator.workflow import describe

    workflow = _prepare(spec, overrides)
    info = describe(workflow)
    if as_json:
        click.echo(json.dumps(info, indent=2, ensure_ascii=False))
        return
    click.echo(f"ok: {spec} is valid (graph {info['graph']}, {len(info['files'])} files)")
    for role, chain in info["chains"].items():
        click.echo(f"  {role}: {' -> '.join(chain) or '(no allowed model)'}")
    for warning in workflow.warnings:
        click.echo(f"warning: {warning}", err=True)


@main.command()
@click.option("--country", help="ISO 3166 code, e.g. AE")
@click.option("--strength", help="e.g. coding, reasoning, arabic")
@click.option("--open-weights", is_flag=True, help="only models with open weights")
@click.option("--provider", help="only models with a route on this provider")
@click.option("--check", is_flag=True, help="ask each configured provider what it serves")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False), help="with --check: check this spec's roles")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="with --spec: override a field")
@click.option("--timeout", default=5.0, show_default=True, help="seconds per provider for --check")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def models(
    country: str | None,
    strength: str | None,
    open_weights: bool,
    provider: str | None,
    check: bool,
    spec_path: str | None,
    overrides: tuple[str, ...],
    timeout: float,
    as_json: bool,
) -> None:
    """List the model catalog, or with --check, what the configured providers serve.

    --check exits 3 when a role of --spec has no reachable model."""
    if check or spec_path:
        _check_models(spec_path, overrides, timeout, as_json)
        return
    from orchestrator.catalog import load_catalog

    entries = load_catalog().filter(
        country=country, strength=strength, open_weights=True if open_weights else None, provider=provider
    )
    if as_json:
        click.echo(json.dumps([e.model_dump(mode="json") for e in entries], indent=2))
        return
    rows = [
        (
            e.id,
            e.country,
            e.lab,
            "yes" if e.open_weights else "no",
            ",".join(e.strengths),
            f"{e.context_window // 1024}k" if e.context_window else "?",
            " ".join(f"{r.provider}/{r.model}" for r in e.routes) or "(no route)",
        )
        for e in entries
    ]
    _table(("id", "country", "lab", "open", "strengths", "context", "routes"), rows)
    if not rows:
        click.echo("(no model matches)", err=True)


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])


def _check_models(spec_path: str | None, overrides: tuple[str, ...], timeout: float, as_json: bool) -> None:
    from orchestrator.probe import (
        default_providers_to_check,
        probe_chains,
        probe_providers,
        unreachable_roles,
    )

    if spec_path:
        from orchestrator.workflow import needed_roles

        workflow = _prepare(spec_path, overrides)
        used = {route.provider for chain in workflow.chains.values() for route in chain}
        providers = {name: workflow.providers[name] for name in sorted(used)}
    else:
        from orchestrator.endpoint import default_providers

        providers = default_providers_to_check(default_providers())
    statuses = probe_providers(providers, timeout)
    rows = probe_chains(workflow.chains, workflow.providers, statuses) if spec_path else []
    missing = unreachable_roles(rows, needed_roles(workflow)) if spec_path else []
    if as_json:
        report = {
            "providers": [vars(s) for s in statuses.values()],
            "roles": rows,
            "unreachable_roles": missing,
        }
        click.echo(json.dumps(report, indent=2))
    else:
        _table(
            ("provider", "kind", "endpoint", "status"),
            [(s.name, s.kind, s.endpoint, ("ok: " if s.ok else "FAILED: ") + s.detail) for s in statuses.values()],
        )
        if rows:
            click.echo("")
            _table(
                ("role", "model", "reachable", "structured output", "detail"),
                [
                    (r["role"], r["model"], "yes" if r["reachable"] else "no", r["structured"], r["detail"])
                    for r in rows
                ],
            )
    if missing:
        click.echo(f"error: no reachable model for role(s): {', '.join(missing)}", err=True)
        sys.exit(3)


@main.command()
@click.option("--graph", "which", flag_value="graph", help="the graph file format instead of the spec")
@click.option("--result", "which", flag_value="result", help="result.json (schema_version 1) instead of the spec")
@click.option("--spec", "which", flag_value="spec", default=True, hidden=True)
def schema(which: str) -> None:
    """Print the JSON Schema of the spec file (for editors), a graph file or result.json."""
    if which == "graph":
        from orchestrator.graph import GraphFile

        click.echo(json.dumps(GraphFile.model_json_schema(), indent=2))
        return
    if which == "result":
        from orchestrator.result import result_json_schema

        click.echo(json.dumps(result_json_schema(), indent=2))
        return
    from orchestrator.spec import spec_json_schema

    click.echo(json.dumps(spec_json_schema(), indent=2))


@main.group()
def graph() -> None:
    """Inspect graphs."""


@graph.command("show")
@click.argument("name_or_path")
@handle_errors
def graph_show(name_or_path: str) -> None:
    """Print the Mermaid text of a built-in graph, a graph file, or a Python graph (pkg.module:build)."""
    from orchestrator.compile import GraphKit, build_python_graph, compile_graph, load_python_graph
    from orchestrator.graph import is_python_graph, load_graph
    from orchestrator.role import builtin_roles, worker_roles

    roles = sorted(worker_roles(builtin_roles()))
    if is_python_graph(name_or_path):
        kit = GraphKit(worker_roles=roles, resolve_models=lambda name, refs: [])
        built = build_python_graph(name_or_path, load_python_graph(name_or_path, Path.cwd()), kit)
        compiled = built.compile() if hasattr(built, "add_node") else built
    else:
        compiled = compile_graph(load_graph(name_or_path, Path.cwd()), roles).compile()
    click.echo(compiled.get_graph().draw_mermaid())
