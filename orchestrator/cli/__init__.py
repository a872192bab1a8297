"""The `orchestrator` command. The only place that prints, configures logging and exits.

`run.py` holds run, resume and runs; `inspect.py` validate, models, graph and schema; `patches.py`
verify and apply; `eval.py` eval run and eval make; `cleanup.py` gc; `doctor.py` doctor; `init.py`
init. The group
is the one error boundary: an OrchestratorError raised by any command becomes its message, its
hint and its exit status (errors.ExitStatus); an OSError or SQLite error that reaches it (its own
state unwritable: a full disk, a read-only folder) is a StateError, exit 3, never a traceback.

Heavy modules (pydantic models, LangGraph, provider SDKs) are imported inside the commands
that need them, so `orchestrator --help` stays fast.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import click

from orchestrator.cli import cleanup, doctor, init, inspect, mcp, patches, publish, run, studio, sweep
from orchestrator.cli import eval as evaluation
from orchestrator.cli._common import fail
from orchestrator.errors import ExitStatus, Interrupted, OrchestratorError, StateError


class Orchestrator(click.Group):
    """The command group, and the one place where errors become exit statuses."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OrchestratorError as exc:
            outcome = exc.outcome if isinstance(exc, Interrupted) else None
            if outcome is not None and outcome.written:
                click.echo(f"partial outputs in {outcome.written[0].parent}", err=True)
            fail(str(exc), exc.hint, exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", code=ExitStatus.INTERRUPTED)
        except (OSError, sqlite3.Error) as exc:  # a file of its own it cannot write (a full disk): no traceback
            failed = StateError.of(exc, "write the orchestrator's own state")
            fail(str(failed), failed.hint, failed.exit_code)


@click.group(cls=Orchestrator, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sovereign-orchestrator")
def main() -> None:
    """Run coding workflows across many LLMs: a planner splits the goal, role nodes run on the
    models suited to them, and the planner aggregates one report."""


_GROUPS = (inspect, run, patches, publish, mcp, studio, sweep, evaluation, cleanup, doctor, init)
for _command in (command for group in _GROUPS for command in group.COMMANDS):
    main.add_command(_command)
