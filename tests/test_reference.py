"""docs/reference/ is generated from the code (the spec models' field descriptions, click's help)
and checked here, so the reference cannot drift from what the tool accepts."""

from __future__ import annotations

import difflib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.cli._reference import REGENERATE, pages, undocumented
from orchestrator.spec import Spec
from orchestrator.spec.graphfile import GraphFile
from orchestrator.spec.operator import OperatorPolicy

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "reference"


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return pages()


def test_the_committed_reference_is_what_the_code_generates(
    generated: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a narrow terminal changes nothing: the width is fixed
    monkeypatch.setenv("COLUMNS", "37")
    assert pages() == generated
    assert sorted(generated) == sorted(p.name for p in DOCS.glob("*.md"))
    for name, text in generated.items():
        committed = (DOCS / name).read_text(encoding="utf-8")
        if committed != text:
            diff = "".join(list(difflib.unified_diff(committed.splitlines(True), text.splitlines(True)))[:40])
            pytest.fail(f"docs/reference/{name} is out of date; regenerate it: {REGENERATE}\n{diff}")


@pytest.mark.parametrize("root", [Spec, OperatorPolicy, GraphFile])
def test_every_field_of_the_file_formats_has_a_description(root: type) -> None:
    # the reference is only as good as the descriptions: a new field says what it does
    assert undocumented(root) == []


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_each_page_covers_every_model_and_command_and_its_links_resolve(generated: dict[str, str]) -> None:
    for name, root in (("spec.md", Spec), ("operator-policy.md", OperatorPolicy), ("graph-file.md", GraphFile)):
        headings = re.findall(r"^## (\S+)$", generated[name], re.M)
        assert headings[0] == root.__name__
        assert set(headings) == {root.__name__, *root.model_json_schema().get("$defs", {})}
        # each field of the root model has its row
        rows = re.findall(r"^\| `([^`]+)` \|", generated[name].split("\n## ")[1], re.M)
        assert rows == [f.alias or key for key, f in root.model_fields.items()]
    paths = {"orchestrator"}
    for command_name, command in main.commands.items():
        paths.add(f"orchestrator {command_name}")
        paths.update(f"orchestrator {command_name} {sub}" for sub in getattr(command, "commands", {}))
    headings = set(re.findall(r"^#+ (orchestrator.*)$", generated["cli.md"], re.M))
    assert headings == paths
    assert "`--fail-on [critical|high|medium|low|info|none]`" in generated["cli.md"]
    for name, text in generated.items():
        anchors = {slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}
        links = set(re.findall(r"\]\(#([^)]+)\)", text))
        assert links and links <= anchors, (name, links - anchors)


def test_check_finds_a_stale_page_and_says_how_to_regenerate(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "orchestrator.cli._reference", "--out", str(tmp_path)]
    written = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in DOCS.glob("*.md"))
    page = tmp_path / "spec.md"
    page.write_text(page.read_text().replace("| `goal` |", "| `goals` |"))
    checked = subprocess.run([*command, "--check"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert checked.returncode == 1
    assert "spec.md" in checked.stderr and "make docs" in checked.stderr
    assert "goals" in page.read_text()  # --check writes nothing
