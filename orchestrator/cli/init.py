"""`orchestrator init`: a starter spec for the repository in the current folder (or DIRECTORY),
checked exactly as `orchestrator validate` checks a spec (load_spec, then prepare_workflow under
the operator's policy) before it is written; an existing file is never overwritten without
--force."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from orchestrator.cli._common import echo, fail, operator

if TYPE_CHECKING:
    from orchestrator.spec.operator import Operator
    from orchestrator.workflow import Workflow


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path), default=Path("."))
@click.option(
    "--policy",
    "choice",
    type=click.Choice(["local-only", "eu", "any"]),
    default="local-only",
    show_default=True,
    help="which models: this machine only; inference in the EU; or any the catalog knows",
)
@click.option("--output", "-o", "name", default="orchestrator.yaml", show_default=True, help="the spec's file name")
@click.option("--force", is_flag=True, help="overwrite the file when it exists")
def init(directory: Path, choice: str, name: str, force: bool) -> None:
    """Write a starter spec for the repository in DIRECTORY (default: here): its languages, include
    globs, its test command as the check that judges patches, and models chosen by --policy.

    The spec is validated before it is written, under the operator's policy (here --policy is
    the choice of models; the operator's policy file comes from $ORCHESTRATOR_POLICY or the
    user's config file)."""
    from orchestrator.cli._starter import detect, render, spec_name

    root = directory.resolve()
    target = root / name
    if Path(name).name != name:
        fail(f"--output {name}: a file name in {root}, not a path", "pass the folder as DIRECTORY")
    if target.exists() and not force:
        fail(f"{target} exists: nothing was written", "pass --force to overwrite it, or --output another name")
    project = detect(root)
    text = render(project, choice, spec_name(root))  # type: ignore[arg-type]  # click checked the choice
    workflow = _validated(root, text, operator(None, None, None))
    target.write_text(text, encoding="utf-8")
    languages = ", ".join(project.languages) or "no known language"
    echo(f"wrote {target} ({languages}; {len(workflow.files.files)} files; models: --policy {choice})")
    if project.check:
        echo(f"  check: {project.check} (found in {project.check_why})")
    else:
        echo("  no test command found: add one under `checks:` to have patches verified", err=True)
    for warning in workflow.warnings:
        echo(f"warning: {warning}", err=True)
    echo(f"next: orchestrator run {_shown(target)} --dry-run, then orchestrator run {_shown(target)}")


def _validated(root: Path, text: str, who: Operator) -> Workflow:
    """The spec checked in place (its relative paths mean what they will mean), from a file of its
    own that is removed either way: a spec that does not validate is never left behind."""
    from orchestrator.errors import OrchestratorError
    from orchestrator.spec import load_spec
    from orchestrator.workflow import prepare_workflow

    fd, scratch = tempfile.mkstemp(prefix=".orchestrator-init-", suffix=".yaml", dir=root)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        try:
            return prepare_workflow(load_spec(scratch), who)
        except OrchestratorError as exc:
            # a bug of init's, or an operator policy that allows none of the chosen models
            fail(f"the starter spec does not validate, nothing was written:\n{exc}", exc.hint, exc.exit_code)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(scratch)


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


COMMANDS: list[click.Command] = [init]
