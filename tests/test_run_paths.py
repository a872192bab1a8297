"""A run's locations, derived once (runtime._stores.RunPaths): the checkpoint, the finished-node
store, the result cache, the recording, the outputs and the stored result, for each kind of
checkpoint; a real run keeps everything where its record says, and finds its data folder once."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator import RunOptions, run_workflow
from orchestrator.errors import SpecError
from orchestrator.runtime import MEMORY, OFF, checkpoints, ledger
from orchestrator.runtime._stores import RunPaths, run_paths
from orchestrator.spec import load_spec
from orchestrator.testing import FakeProvider, valid_answer
from orchestrator.workflow import Workflow, prepare_workflow

SPEC = """
version: 1
name: paths
goal: Review the app.
workspace: ws
providers: {fake: {kind: fake}}
models: {planner: fake/planner, refactor: fake/coder}
tasks: [{role: refactor, instruction: tidy}]
output: {dir: reports, formats: [json, markdown]}
fail_on: none
"""
RUN = "20260101T000000-abcdef"


@pytest.fixture
def workflow(fake: FakeProvider, write_spec: Any) -> Workflow:
    fake.script("planner", valid_answer)
    fake.script("coder", valid_answer)
    return prepare_workflow(load_spec(write_spec(SPEC)))


def data() -> Path:
    return Path(os.environ["ORCHESTRATOR_DATA_DIR"])


def test_a_default_run_keeps_everything_in_its_data_folder(workflow: Workflow, tmp_path: Path) -> None:
    paths = run_paths(workflow, RunOptions(), RUN)
    assert paths.data == data() and (data() / ".gitignore").is_file()
    assert paths.checkpoint == str(data() / "checkpoints.sqlite")
    assert paths.finished == data() / "finished" / f"{RUN}.sqlite"
    assert paths.cache == data() / "cache.sqlite"
    assert paths.results == data() / "results" / f"{RUN}.json"
    assert paths.listed and paths.carried
    assert paths.spec == tmp_path / "spec.yaml"
    # the spec's output.dir, relative to the spec, in the spec's formats
    assert paths.output_dir == tmp_path / "reports" and paths.formats == ("json", "markdown")
    assert paths.recording is None and not paths.replaying


def test_options_name_the_outputs_the_cache_and_the_recording(workflow: Workflow, tmp_path: Path) -> None:
    options = RunOptions(
        output_dir=tmp_path / "o", formats=["html"], cache=tmp_path / "c.sqlite", record=tmp_path / "r"
    )
    paths = run_paths(workflow, options, RUN)
    assert paths.output_dir == tmp_path / "o" and paths.formats == ("html",)
    assert paths.cache == tmp_path / "c.sqlite"
    assert paths.recording == tmp_path / "r" and not paths.replaying
    replayed = run_paths(workflow, RunOptions(replay=tmp_path / "r"), RUN)
    assert replayed.recording == tmp_path / "r" and replayed.replaying
    assert replayed.cache is None  # a replay answers every call from the recording, never the cache


def test_record_with_replay_is_refused_before_any_folder_is_made(workflow: Workflow, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="--record and --replay cannot be used together"):
        run_paths(workflow, RunOptions(record=tmp_path / "a", replay=tmp_path / "b"), RUN)
    assert not data().exists()


def test_in_memory_the_run_is_not_listed_and_keeps_its_nodes_in_memory(workflow: Workflow) -> None:
    paths = run_paths(workflow, RunOptions(checkpoint=MEMORY), RUN)
    assert paths.checkpoint is None and paths.finished is None
    assert not paths.listed and paths.results is None
    assert paths.carried  # the in-memory store sits beside the in-memory checkpoint
    assert paths.cache == data() / "cache.sqlite"


def test_without_checkpoint_nor_cache_the_data_folder_is_never_made(workflow: Workflow) -> None:
    paths = run_paths(workflow, RunOptions(checkpoint=OFF, cache=False), RUN)
    assert paths.checkpoint == OFF and paths.finished is None and paths.cache is None
    assert paths.data is None and not paths.listed
    assert not data().exists()


def test_a_sqlite_checkpoint_keeps_its_finished_nodes_beside_it(workflow: Workflow, tmp_path: Path) -> None:
    location = tmp_path / "elsewhere" / "runs.sqlite"
    paths = run_paths(workflow, RunOptions(checkpoint=str(location), cache=False), RUN)
    assert paths.checkpoint == str(location)
    assert paths.finished == tmp_path / "elsewhere" / "finished" / f"{RUN}.sqlite"
    assert paths.carried and paths.listed
    assert paths.results == data() / "results" / f"{RUN}.json"  # a listed run's result stays on this machine


def test_a_postgres_checkpoint_keeps_its_own_copy_and_this_machines_store(workflow: Workflow) -> None:
    url = "postgresql://runner:secret@db.example:5432/runs"
    paths = run_paths(workflow, RunOptions(checkpoint=url), RUN)
    assert paths.checkpoint == url
    assert paths.finished == data() / "finished" / f"{RUN}.sqlite"
    assert not paths.carried  # a resume elsewhere has the database, not this machine's store
    assert paths.listed


def test_a_run_keeps_everything_where_its_record_says(workflow: Workflow, tmp_path: Path) -> None:
    options = RunOptions(run_id=RUN, output_dir=tmp_path / "out")
    paths = run_paths(workflow, options, RUN)
    outcome = run_workflow(workflow, options)
    assert outcome.run_id == RUN
    assert outcome.result.checkpoint.location == paths.checkpoint
    assert {p.name for p in outcome.written} >= {"result.json", "report.md"}
    assert all(p.is_relative_to(paths.output_dir) for p in outcome.written)
    assert _present(paths)
    entry, stored = ledger.get_run(RUN), ledger.stored_result(RUN)
    assert entry is not None and entry.checkpoint == paths.checkpoint
    assert entry.spec_path == str(paths.spec.resolve())
    assert stored is not None and stored.path == str(_some(paths.results).resolve())
    assert stored.output_dir == str(paths.output_dir.resolve()) and stored.formats == list(paths.formats)


def test_a_run_finds_its_data_folder_once(workflow: Workflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In the workspace's own folder (as on a user's machine) each look-up asks git whether the
    folder is committed: a run asks once, for its checkpoint, cache, finished nodes and result."""
    monkeypatch.delenv("ORCHESTRATOR_DATA_DIR")
    workspace = workflow.loaded.workspace
    subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)
    (workspace / ".orchestrator").mkdir()  # as a run before this one left it
    found: list[Path] = []
    real = checkpoints.run_data_dir

    def counted(where: Path, untrusted: bool = False) -> tuple[Path, str | None]:
        found.append(where)
        return real(where, untrusted)

    monkeypatch.setattr(checkpoints, "run_data_dir", counted)
    outcome = run_workflow(workflow, RunOptions(output_dir=tmp_path / "out"))
    assert found == [workspace]
    stored = ledger.stored_result(outcome.run_id)
    assert stored is not None and Path(stored.path).parent == workspace / ".orchestrator" / "results"
    assert (workspace / ".orchestrator" / "checkpoints.sqlite").is_file()
    assert (workspace / ".orchestrator" / "cache.sqlite").is_file()


def _present(paths: RunPaths) -> bool:
    """Every file the record names was made by the run."""
    files = [paths.finished, paths.cache, paths.results, Path(paths.checkpoint or "")]
    return all(f is not None and f.is_file() for f in files)


def _some(path: Path | None) -> Path:
    assert path is not None
    return path
