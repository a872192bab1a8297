"""What the commands share: failing with a message, logging options, preparing a spec, tables."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from orchestrator.errors import ExitStatus, printable

if TYPE_CHECKING:
    from orchestrator.spec.operator import Operator
    from orchestrator.workflow import Workflow

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, hint: str = "", code: int = ExitStatus.USAGE) -> NoReturn:
    for line in message.splitlines() or [""]:  # each line made printable: messages quote specs and models
        click.echo(f"error: {printable(line)}", err=True)
    if hint:
        click.echo(f"hint: {printable(hint)}", err=True)
    sys.exit(int(code))


def echo(text: str, err: bool = False) -> None:
    """One line of command output whose parts come from specs, catalogs or models."""
    click.echo(printable(text), err=err)


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


# the operator's policy file and whether what they run is trusted, as every command takes them
policy_option = click.option(
    "--policy",
    "policy",
    type=click.Path(dir_okay=False, path_type=Path),
    help="the operator's policy file (default: $ORCHESTRATOR_POLICY, then ~/.config/sovereign-orchestrator)",
)


def trusted_option(what: str = "the spec") -> Callable[[F], F]:
    return click.option(
        "--trusted/--untrusted",
        "trusted",
        default=None,
        help=f"treat {what} as trusted or as a hostile pull request (default: untrusted on a CI pull request)",
    )


def trust_options(func: F) -> F:
    """The operator's side: their policy file, whether the spec is trusted, their workspace."""
    func = click.option(
        "--workspace",
        "workspace",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        help="the workspace to use instead of the spec's (the operator widens the spec's confinement)",
    )(func)
    return policy_option(trusted_option()(func))


def operator(policy: Path | None, trusted: bool | None, workspace: Path | None) -> Operator:
    from orchestrator.spec.operator import load_operator

    return load_operator(policy, None if trusted is None else not trusted, workspace)


def prepare(spec_path: str, overrides: Sequence[str], who: Operator | None = None) -> Workflow:
    from orchestrator.spec import load_spec
    from orchestrator.workflow import prepare_workflow

    return prepare_workflow(load_spec(spec_path, overrides), who)


def table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    rows = [tuple(printable(cell) for cell in row) for row in rows]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
