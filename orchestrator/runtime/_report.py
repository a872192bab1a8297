"""A run's result kept for later: `result.json` is stored in the run data folder (whatever formats
the run wrote, even none) and found through the run ledger, so `orchestrator report RUN_ID`
rebuilds report.html and every other output from it, without the spec or any model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import NoCheckpoint
from orchestrator.outputs import REPORT, RunResult, write_outputs
from orchestrator.runtime import ledger

if TYPE_CHECKING:
    from orchestrator.runtime._run import RunOptions
    from orchestrator.runtime._stores import RunPaths
    from orchestrator.workflow import Workflow


def output_target(workflow: Workflow, options: RunOptions) -> tuple[Path, list[str]]:
    """Where a run's outputs go, and in which formats."""
    spec = workflow.loaded.spec
    out_dir = options.output_dir or (workflow.loaded.base_dir / spec.output.dir)
    return out_dir, list(options.formats or spec.output.formats)


def check_formats(workflow: Workflow, options: RunOptions) -> None:
    """A review format needs a run that reviews a diff: refused before anything runs (exit 2)."""
    from orchestrator.errors import SpecError
    from orchestrator.outputs._write import REVIEW_FILES

    _, formats = output_target(workflow, options)
    wanted = [f for f in formats if f in REVIEW_FILES]
    if wanted and workflow.diff is None:
        raise SpecError(
            f"output format {wanted[0]} needs a diff to review: set diff_base in the spec, pass --diff-base REF, "
            "or run in a CI pull-request job (its base branch is the default)"
        )


def store_result(workflow: Workflow, paths: RunPaths, result: RunResult) -> Path:
    """Keep the result of a listed run in its data folder and tell the ledger where it is."""
    path = paths.results
    assert path is not None, "only a listed run keeps its result"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(result.to_json(), encoding="utf-8")
    ledger.store_result(
        ledger.StoredResult(
            run_id=result.run_id,
            path=str(path.resolve()),
            output_dir=str(paths.output_dir.resolve()),
            formats=list(paths.formats),
            line_counts={f.path: f.lines for f in workflow.files.files},
        )
    )
    return path


def load_result(run_id: str) -> tuple[RunResult, ledger.StoredResult]:
    stored = ledger.stored_result(run_id)
    if stored is None:
        listed = ledger.get_run(run_id) is not None
        why = "it left no result (it is still running or was killed)" if listed else "no such run on this machine"
        raise NoCheckpoint(f"cannot rebuild the outputs of run {run_id}: {why}")
    try:
        text = Path(stored.path).read_text(encoding="utf-8")
    except OSError as exc:
        raise NoCheckpoint(f"the stored result of run {run_id} cannot be read: {exc}") from None
    return RunResult.model_validate_json(text), stored


def rebuild_outputs(run_id: str, output_dir: Path | None = None, formats: list[str] | None = None) -> list[Path]:
    """Write a stored run's outputs again: its own formats and the HTML report (or `formats`),
    in its own output folder (or `output_dir`)."""
    from orchestrator import __version__

    result, stored = load_result(run_id)
    chosen = formats or [*stored.formats, *([] if REPORT in stored.formats else [REPORT])]
    folder = output_dir or Path(stored.output_dir or "out")
    return write_outputs(result, folder, chosen, stored.line_counts, __version__)
