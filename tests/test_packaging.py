"""The wheel carries graphs/, prompts/ and the catalog; a non-editable install works."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (found,) = dist.glob("sovereign_orchestrator-*.whl")
    return found


def test_wheel_contains_the_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "orchestrator/graphs/coding-workflow.yaml" in names
    assert "orchestrator/catalog/catalog.yaml" in names
    for role in ("planner", "aggregate", "architecture_review", "refactor", "debug", "arabic_docs", "system"):
        assert f"orchestrator/prompts/{role}.md" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "orchestrator = orchestrator.cli:main" in text and "[orchestrator.providers]" in text


def test_installed_wheel_finds_its_data_without_the_source_tree(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    code = (
        "import orchestrator, sys\n"
        "from importlib import resources\n"
        f"assert orchestrator.__file__.startswith({str(target)!r}), orchestrator.__file__\n"
        "assert resources.files('orchestrator').joinpath('graphs', 'coding-workflow.yaml').is_file()\n"
        "from orchestrator.cli import main\n"
        f"main(['validate', {str(REPO / 'examples' / 'quickstart' / 'spec.yaml')!r}])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "ok:" in done.stdout and "arabic_docs: local/smollm2" in done.stdout
