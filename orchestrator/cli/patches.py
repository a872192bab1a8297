"""`orchestrator verify` (a patch judged by the spec's checks, no model involved) and `orchestrator
apply` (a run's verified patches written to the workspace: the only command that writes there)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from orchestrator.errors import SpecError


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option(
    "--patch", "patch_file", required=True, type=click.Path(dir_okay=False, path_type=Path), help="a unified diff"
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a spec field")
@click.option("--json", "as_json", is_flag=True, help="print the verdict and every check as JSON")
def verify(spec: str, patch_file: Path, overrides: tuple[str, ...], as_json: bool) -> None:
    """Verify a patch with SPEC's checks: each judged check on a scratch copy of the workspace,
    without and with the patch, in the sandbox. No model is involved.

    Exit 0 verified, 1 not verified, 2 usage or spec error."""
    from orchestrator.runtime.verify import unsandboxed_warning, verdict_exit, verdict_record, verify_patch
    from orchestrator.spec import load_spec

    loaded = load_spec(spec, overrides)
    try:
        diff = patch_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the patch {patch_file}: {exc}") from None
    verdict, report = verify_patch(loaded, diff, handle_sigterm=True)
    if warning := unsandboxed_warning(report.sandbox):
        click.echo(warning, err=True)
    if as_json:
        payload = verdict_record(verdict, report, str(patch_file))  # as the MCP server's verify_patch
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        click.echo(f"{verdict.verdict}: {patch_file} ({verdict.reason})")
        for check in verdict.checks:
            took = f", {check.duration_ms / 1000:.1f}s" if check.after else ""
            click.echo(f"  {check.name}: {check.before} -> {check.after or 'not run'}{took}")
    sys.exit(int(verdict_exit(verdict)))


@click.command()
@click.argument("run_id")
@click.option(
    "--patch", "patch_ids", multiple=True, metavar="ID", help="a patch of the run (default: every verified one)"
)
@click.option("--branch", help="the new branch (default: orchestrator/RUN_ID)")
@click.option("--force", is_flag=True, help="apply patches that are not verified too")
def apply(run_id: str, patch_ids: tuple[str, ...], branch: str | None, force: bool) -> None:
    """Write a run's verified patches to its workspace: a commit on a new branch in a git
    repository, else the files in place. RUN_ID is a run of this machine, or a result.json."""
    from orchestrator.runtime.apply import apply_patches

    done = apply_patches(run_id, list(patch_ids), branch, force)
    click.echo(f"applied {', '.join(done.patches)} to {done.workspace}")
    for note in done.notes:
        click.echo(f"  {note}")


COMMANDS = (verify, apply)
