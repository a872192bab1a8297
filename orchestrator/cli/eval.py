"""`orchestrator eval run` (arms x instances x repeats as ordinary runs, judged by each instance's
tests, and the tables of which arm resolves the most at what cost) and `orchestrator eval make`
(instances from fix commits). The runtime (runtime/evaluation) does the work; this module turns
flags into options and prints."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from orchestrator.cli._common import echo, log_options, operator, policy_option, setup_logging, table, trusted_option


@click.group(name="eval")
def eval_group() -> None:
    """Measure which model does each role best on your own code, under your policy."""


@eval_group.command(name="run")
@click.argument("eval_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), help="default: ./eval-NAME")
@click.option("--concurrency", type=click.IntRange(1, 64), default=2, show_default=True, help="runs at once")
@click.option("--executor", metavar="local|ray[:ADDR]", help="where the runs' role work runs (default: here)")
@click.option("--checkpoint", help="SQLite file or postgres:// URL for the runs (default: each checkout's); 'none'")
@click.option("--record", type=click.Path(file_okay=False, path_type=Path), help="write every call and check down")
@click.option("--replay", type=click.Path(file_okay=False, path_type=Path), help="serve them from a recording")
@click.option(
    "--objective",
    type=click.Choice(["resolved", "cost_per_resolved"]),
    default="resolved",
    show_default=True,
    help="what ranks the arms and picks the winners",
)
@click.option(
    "--write-models",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write the `models:` block that wins per role under the objective",
)
@click.option("--json", "as_json", is_flag=True, help="eval.json on stdout instead of the table")
@click.option("-q", "--quiet", is_flag=True, help="no progress, errors only")
@trusted_option("the eval and its spec")
@policy_option
@log_options
def run_eval_command(
    eval_file: Path,
    output_dir: Path | None,
    concurrency: int,
    executor: str | None,
    checkpoint: str | None,
    record: Path | None,
    replay: Path | None,
    objective: str,
    write_models: Path | None,
    as_json: bool,
    quiet: bool,
    trusted: bool | None,
    policy: Path | None,
    log_format: str,
    verbose: int,
) -> None:
    """Run every arm of EVAL_FILE on every instance, `repeats` times, and judge each run's patch by
    the instance's tests: eval.json, eval.md and eval.html in the output folder.

    Each run is an ordinary run (checkpointed, listed; its outputs in OUTPUT_DIR/runs/ARM/ID/rN/);
    run the same eval again with the same --output-dir and what finished is kept, what was stopped
    is resumed. Exit 0 when every run was judged; 5 when the policy refused an arm on an instance
    (the others still run; the report says which and why); 2 on a bad eval file; 3 or 4 when a run
    failed; 130/143 when stopped."""
    from orchestrator.errors import SpecError
    from orchestrator.runtime import DEFAULT, MEMORY
    from orchestrator.runtime.evaluation import EvalOptions, models_block, run_eval, write_eval
    from orchestrator.spec.evalfile import load_eval

    setup_logging(log_format, verbose, quiet)
    loaded = load_eval(eval_file)
    folder = output_dir or Path(f"eval-{loaded.eval.name}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpecError(f"--output-dir: cannot create {folder}: {exc.strerror or exc}") from None
    runs = len(loaded.instances) * len(loaded.eval.arms) * loaded.eval.repeats
    if not quiet:
        echo(
            f"eval {loaded.eval.name}: {len(loaded.instances)} instance(s) x {len(loaded.eval.arms)} arm(s) x "
            f"{loaded.eval.repeats} repeat(s) = {runs} run(s), {concurrency} at once, outputs in {folder}",
            err=True,
        )
    options = EvalOptions(
        output_dir=folder,
        concurrency=concurrency,
        executor=executor,
        checkpoint=MEMORY if checkpoint == "none" else checkpoint or DEFAULT,
        record=record,
        replay=replay,
        objective="cost_per_resolved" if objective == "cost_per_resolved" else "resolved",
        progress=_Lines(quiet),
        handle_sigterm=True,
    )
    result = run_eval(loaded, operator(policy, trusted, None), options)
    written = write_eval(result, folder)
    if write_models is not None:
        write_models.write_text(models_block(result.winners, result.name, result.objective), encoding="utf-8")
    if as_json:
        click.echo(result.to_json().rstrip())
    else:
        _table(result)
    if not quiet:
        for refusal in result.refusals:
            echo(f"refused: arm {refusal.arm} on {refusal.instance}: {refusal.reason}", err=True)
        models = f"; models in {write_models}" if write_models is not None else ""
        echo(f"eval done (exit {result.exit_code}), tables in {written[1]}{models}", err=True)
    sys.exit(result.exit_code)


class _Lines:
    """One line on stderr per step, per run started and per run judged."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def note(self, text: str) -> None:
        if not self.quiet:
            echo(text, err=True)

    def started(self, label: str, run_id: str) -> None:
        if not self.quiet:
            echo(f"started {label}: run {run_id}", err=True)

    def judged(self, run: Any) -> None:
        if not self.quiet:
            echo(f"judged {run.label}: {run.outcome} ({run.reason[:160]})", err=True)


def _table(result: Any) -> None:
    from orchestrator.outputs.evaluation import money, per_resolved, percent, seconds

    rows = [
        (
            str(rank),
            arm.arm,
            f"{arm.resolved}/{arm.judged}",
            percent(arm.rate),
            f"{percent(arm.ci_low)}-{percent(arm.ci_high)}",
            str(arm.tests_broken),
            f"{arm.tokens_in}+{arm.tokens_out}",
            money(arm.cost_usd),
            seconds(arm.duration_ms),
            per_resolved(arm),
            str(arm.refused),
        )
        for rank, arm in enumerate(result.arms, 1)
    ]
    header = ("rank", "arm", "resolved", "rate", "95% CI", "broken", "tokens", "cost", "time", "cost/resolved")
    table((*header, "refused"), rows)


@eval_group.command(name="make")
@click.option(
    "--from-commits",
    "repo",
    required=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="the git repository whose fix commits become instances",
)
@click.argument("revisions", nargs=-1, required=True)
@click.option("--spec", type=click.Path(dir_okay=False, path_type=Path), help="whose checks judge (default: pytest)")
@click.option("--setup", help="run in the sandbox in each checkout before its tests (e.g. pip install -e .)")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("instances.jsonl"),
    show_default=True,
    help="the SWE-bench-style JSONL written",
)
@policy_option
@log_options
def make_command(
    repo: Path,
    revisions: tuple[str, ...],
    spec: Path | None,
    setup: str | None,
    output: Path,
    policy: Path | None,
    log_format: str,
    verbose: int,
) -> None:
    """Build instances from fix commits REVISIONS of a repository: a commit qualifies when its test
    changes fail on its parent and pass with its code changes (checked by running them). Writes
    the qualifying ones as SWE-bench-style JSONL (an eval file's `instances:`).

    Exit 0 when at least one qualifies, 1 when none does, 2 on a bad repository or spec."""
    from orchestrator.runtime.evaluation._make import make_from_commits, write_instances

    setup_logging(log_format, verbose)
    made = make_from_commits(repo, list(revisions), operator(policy, None, None), spec=spec, setup=setup)
    for one in made:
        verdict = "qualifies" if one.instance is not None else "does not qualify"
        echo(f"{one.revision} ({one.commit[:10] or '?'}): {verdict}: {one.reason}", err=True)
    count = write_instances(made, output)
    echo(f"{count} instance(s) of {len(made)} commit(s) in {output}", err=True)
    sys.exit(0 if count else 1)


COMMANDS: list[click.Command] = [eval_group]
