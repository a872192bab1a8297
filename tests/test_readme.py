"""The README is a first read that stays true: small, every link leads somewhere, and its spec
and commands work as written (the quick start from a fresh clone is the CI's own job)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.process import orchestrator

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(line.lstrip("#")) for line in text.splitlines() if re.match(r"^#{1,6} ", line)}


def test_the_readme_is_a_first_read() -> None:
    text = README.read_text()
    assert len(text.encode()) <= 12 * 1024, "the README is a first read: the reference belongs in docs/"
    for needed in ("## Quick start", "make quickstart", "make test", "docs/images/report.png", "## A spec file"):
        assert needed in text, needed
    assert (ROOT / "docs" / "images" / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page: Path) -> None:
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        missing = not linked.exists()
        if missing or (anchor and linked.suffix == ".md" and anchor not in anchors(linked)):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def test_the_readmes_spec_validates_as_written(tmp_path: Path) -> None:
    """Its spec, in a repository of the shape it names; `orchestrator validate` as the README runs it."""
    yaml_blocks = [body for lang, body in FENCE.findall(README.read_text()) if lang == "yaml"]
    (tmp_path / "spec.yaml").write_text(yaml_blocks[0])
    (tmp_path / "src" / "auth" / "keys").mkdir(parents=True)
    (tmp_path / "src" / "auth" / "refresh.py").write_text("def refresh(token):\n    return token\n")
    (tmp_path / "src" / "auth" / "keys" / "signing.py").write_text("KEY = 'not a real key'\n")
    commands = [line for lang, body in FENCE.findall(README.read_text()) if lang == "sh" for line in body.splitlines()]
    assert "orchestrator validate spec.yaml" in " ".join(commands)
    done = orchestrator("validate", "spec.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: spec.yaml is valid" in done.stdout


def test_the_readmes_bad_spec_error_is_the_one_the_tool_prints(tmp_path: Path) -> None:
    quoted = re.search(r"`error: (spec\.yaml:(\d+): limits\.concurency: [^`]+)`", README.read_text())
    assert quoted is not None
    lines = ["version: 1", "name: x", "goal: g", "models: {default: local/smollm2}", "limits: {concurency: 2}"]
    assert len(lines) == int(quoted.group(2))
    (tmp_path / "spec.yaml").write_text("\n".join(lines) + "\n")
    done = orchestrator("validate", "spec.yaml", cwd=tmp_path)
    assert done.returncode == 2 and quoted.group(1) in done.stderr, done.stderr


def test_every_command_the_readme_names_exists() -> None:
    """Each `orchestrator COMMAND` in the README's shell blocks is one the CLI has (its --help)."""
    from click.testing import CliRunner

    from orchestrator.cli import main

    blocks = [body for lang, body in FENCE.findall(README.read_text()) if lang == "sh"]
    named = {m.group(1) for body in blocks for m in re.finditer(r"^orchestrator ([a-z]+)", body, re.M)}
    assert {"doctor", "init", "validate", "run"} <= named
    for command in sorted(named):
        done = CliRunner().invoke(main, [command, "--help"])
        assert done.exit_code == 0, (command, done.output)
