"""`orchestrator verify` (a patch judged by the spec's checks, no model involved) and `orchestrator
apply` (a run's verified patches written to the workspace: the only command that writes there)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from orchestrator.cli._common import echo, operator, prepare, trust_options
from orchestrator.errors import SpecError

if TYPE_CHECKING:
    from orchestrator.checks import PatchVerdict, VerificationReport


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option(
    "--patch", "patch_file", required=True, type=click.Path(dir_okay=False, path_type=Path), help="a unified diff"
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a spec field")
@click.option("--json", "as_json", is_flag=True, help="print the verdict and every check as JSON")
@trust_options
def verify(
    spec: str,
    patch_file: Path,
    overrides: tuple[str, ...],
    as_json: bool,
    policy: Path | None,
    trusted: bool | None,
    workspace: Path | None,
) -> None:
    """Verify a patch with SPEC's checks: each judged check on a scratch copy of the workspace,
    without and with the patch, in the sandbox, under the operator's policy as `run` is. No
    model is involved.

    Exit 0 verified, 1 not verified (unverified, inconclusive, not applied, rejected), 2 usage or
    spec error, 5 refused by the operator's policy or pull-request mode."""
    from orchestrator.runtime.verify import unsandboxed_warning, verdict_exit, verdict_record, verify_patches

    workflow = prepare(spec, overrides, operator(policy, trusted, workspace))
    try:
        diff = patch_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the patch {patch_file}: {exc}") from None
    verdicts, report = verify_patches(workflow, [diff], handle_sigterm=True)
    verdict = verdicts[0]
    if warning := unsandboxed_warning(report.sandbox):
        click.echo(warning, err=True)
    if as_json:
        payload = verdict_record(verdict, report, str(patch_file))  # as the MCP server's verify_patch
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        for line in verdict_lines(verdict, report, str(patch_file)):
            echo(line)
    sys.exit(int(verdict_exit(verdict)))


def verdict_lines(verdict: PatchVerdict, report: VerificationReport, patch: str) -> list[str]:
    """The verdict as `orchestrator verify` prints it: each check before and after, the tests
    that changed, the interpreter and where the packages under test came from."""
    lines = [f"{verdict.verdict}: {patch} ({verdict.reason})"]
    for check in verdict.checks:
        took = f", {check.duration_ms / 1000:.1f}s" if check.after else ""
        reused = " (the run_check run of the same patch)" if check.reused else ""
        lines.append(f"  {check.name}: {check.before} -> {check.after or 'not run'}{took}{reused}")
        changed = check.tests
        if changed is None:
            continue
        for key in ("fixed", "broken", "still_failing"):
            names = getattr(changed, key)
            if names:
                more = changed.counts.get(key, len(names)) - len(names[:3])
                tail = f" and {more} more" if more > 0 else ""
                lines.append(f"    {key.replace('_', ' ')}: {', '.join(names[:3])}{tail}")
    environment = report.environment
    if environment is not None:
        version = f", Python {environment.version}" if environment.version else ""
        lines.append(f"  interpreter: {environment.interpreter or 'none found'} ({environment.source}{version})")
        for package in environment.packages:
            where = "the patched copy" if package.in_copy else "NOT the patched copy"
            said = f"{package.path} ({where})" if package.path else f"not imported: {package.error}"
            lines.append(f"  {package.package} imported from {said}")
        if environment.bound:
            lines.append(f"  ignored files: {environment.bound}")
    return lines


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
