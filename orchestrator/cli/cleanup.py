"""`orchestrator gc`: what killed processes left behind, removed."""

from __future__ import annotations

import click


@click.command()
@click.option("--dry-run", is_flag=True, help="list what would be removed, remove nothing")
def gc(dry_run: bool) -> None:
    """Remove what killed runs and verifications left behind: the scratch copies of workspaces
    in the temporary folder, private temporary folders included, and their checks' cgroups.
    A run or a resume does this when it starts; what a running process uses is never touched."""
    from orchestrator.checks import leftovers, remove_leftovers

    found = leftovers() if dry_run else remove_leftovers()
    for path in found:
        click.echo(str(path))
    click.echo(f"{'would remove' if dry_run else 'removed'} {len(found)} leftover(s)")


COMMANDS = (gc,)
