"""The `orchestrator` command. The only place that prints, configures logging and exits.

`run.py` holds run, resume and runs; `inspect.py` validate, models, graph and schema.

Heavy modules (pydantic models, LangGraph, provider SDKs) are imported inside the commands
that need them, so `orchestrator --help` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from functools import wraps
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


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])


# the commands register themselves on `main` (imported last: they use the helpers above)
from orchestrator.cli import inspect as _inspect  # noqa: E402, F401
from orchestrator.cli import run as _run  # noqa: E402, F401
