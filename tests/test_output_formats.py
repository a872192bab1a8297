"""The output formats are one table: `orchestrator.formats` names them once (`OutputFormat`, which
the spec validates against), `outputs/_write.py` maps each name to its file and writer (`WRITERS`,
in the order they are written), and the CLI's `--format` offers the same names without loading
the spec's models (no pydantic at start, nor for a command's help)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import get_args

import pytest
from click.testing import CliRunner

from orchestrator import RunOptions, run_workflow
from orchestrator.cli import main
from orchestrator.cli.run import FORMATS as CLI_FORMATS
from orchestrator.cli.run import report, run
from orchestrator.cli.sweep import sweep
from orchestrator.formats import OUTPUT_FORMATS, OutputFormat
from orchestrator.outputs import REVIEW_FILES, WRITERS, write_outputs
from orchestrator.outputs.junit import build_junit
from orchestrator.outputs.markdown import render_markdown
from orchestrator.outputs.review import build_review, github_review, gitlab_review
from orchestrator.outputs.sarif import build_sarif
from orchestrator.runtime.publish import FILES
from orchestrator.spec import load_spec
from orchestrator.testing import FakeProvider
from orchestrator.workflow import prepare_workflow
from tests.process import modules_imported_by
from tests.review_repo import make_repo
from tests.test_review import script


def test_every_format_the_spec_names_has_one_row_and_a_file_of_its_own() -> None:
    assert get_args(OutputFormat) == OUTPUT_FORMATS
    assert sorted(WRITERS) == sorted(OUTPUT_FORMATS)
    files = [writer.file for writer in WRITERS.values()]
    assert len(set(files)) == len(files)
    assert REVIEW_FILES == {"github-review": "review.json", "gitlab-review": "gitlab-review.json"}
    assert FILES == {"github": "review.json", "gitlab": "gitlab-review.json"}


def test_the_cli_offers_the_spec_formats_and_refuses_another(tmp_path: Path) -> None:
    for command in (run, report, sweep):
        (option,) = [p for p in command.params if p.name == "formats"]
        assert option.type is CLI_FORMATS
    assert CLI_FORMATS.choices == OUTPUT_FORMATS
    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\nname: n\ngoal: g\n")
    done = CliRunner().invoke(main, ["run", str(spec), "--format", "pdf"])
    assert done.exit_code == 2 and "'pdf' is not one of" in done.output
    assert ", ".join(repr(name) for name in OUTPUT_FORMATS) in done.output
    shown = CliRunner().invoke(main, ["run", "--help"])
    assert f"--format [{'|'.join(OUTPUT_FORMATS)}]" in shown.output


def test_the_format_names_cost_no_pydantic_at_start_nor_in_a_commands_help() -> None:
    for command in (["--help"], ["run", "--help"], ["report", "--help"], ["sweep", "--help"]):
        assert not {"pydantic", "orchestrator.spec"} & modules_imported_by(command), command


@pytest.mark.needs("" if shutil.which("git") else "git is not installed")
def test_each_format_asked_for_is_written_in_the_table_order_by_its_writer(
    fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "repo")
    script(fake)
    workflow = prepare_workflow(load_spec(repo.spec, ["diff_base=main"]))
    result = run_workflow(workflow, RunOptions(checkpoint="memory", write=False)).result
    out = tmp_path / "out"
    written = write_outputs(result, out, list(reversed(OUTPUT_FORMATS)), {"calc.py": 12}, "9.9")
    formats = [path.name for path in written if path.parent == out]
    assert formats == [writer.file for writer in WRITERS.values()]
    assert formats[:5] == ["findings.sarif", "junit.xml", "result.json", "report.md", "report.html"]
    assert [path.parent.name for path in written[len(formats) :]] == ["patches"] * (len(written) - len(formats))
    assert json.loads((out / "findings.sarif").read_text()) == build_sarif(result, {"calc.py": 12}, "9.9")
    assert (out / "junit.xml").read_text() == build_junit(result)
    assert (out / "result.json").read_text() == result.to_json()
    assert (out / "report.md").read_text() == render_markdown(result)
    assert "<html" in (out / "report.html").read_text()
    assert json.loads((out / "review.json").read_text()) == github_review(build_review(result))
    assert json.loads((out / "gitlab-review.json").read_text()) == gitlab_review(build_review(result))

    built = []
    from orchestrator.outputs import review

    # a spy on the real function: the two review formats read one review
    monkeypatch.setattr(review, "build_review", lambda result: built.append(1) or build_review(result))
    reviews = write_outputs(result, tmp_path / "reviews", ["gitlab-review", "github-review"])
    assert [path.name for path in reviews][:2] == ["review.json", "gitlab-review.json"] and len(built) == 1
    only = write_outputs(result, tmp_path / "some", ["json", "no-such-format", "markdown"])
    assert [path.name for path in only if path.parent == tmp_path / "some"] == ["result.json", "report.md"]
