"""What the commands share: failing with a message, logging options, preparing a spec, tables."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

import click

from orchestrator.errors import ExitStatus

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, hint: str = "", code: int = ExitStatus.USAGE) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
    sys.exit(int(code))


def log_options(func: F) -> F:
    func = click.option(
        "--log-format", type=click.Choice(["auto", "console", "json"]), default="auto", show_default=True
    )(func)
    func = click.option("-v", "--verbose", count=True, help="-v info, -vv debug logs on stderr")(func)
    return func


def setup_logging(log_format: str, verbose: int, quiet: bool = False) -> None:
    from orchestrator.cli._logging import configure_logging

    level = "error" if quiet else {0: "warning", 1: "info"}.get(verbose, "debug")
    configure_logging(log_format, level)


def prepare(spec_path: str, overrides: Sequence[str]) -> Any:
    from orchestrator.spec import load_spec
    from orchestrator.workflow import prepare_workflow

    return prepare_workflow(load_spec(spec_path, overrides))


def table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
