from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.testing import FakeProvider, forbid_real_models, registry


@pytest.fixture(autouse=True)
def _no_real_models(request: pytest.FixtureRequest) -> Iterator[None]:
    """Unit tests may not reach a real model; integration tests opt in with the marker."""
    if request.node.get_closest_marker("integration"):
        yield
        return
    with forbid_real_models():
        yield


@pytest.fixture(autouse=True)
def _isolated_run_data(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkpoints, caches and the run ledger of each test (and of the CLI subprocesses it
    starts) live in a folder of its own, never in the repository or the user's home."""
    home = tmp_path_factory.mktemp("run-data")
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    # checks such as `python -m pytest` run this environment's interpreter (with pytest): it is
    # the caller's active environment, as a developer's activated one is (a check never finds the
    # orchestrator's own environment on PATH by itself)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("VIRTUAL_ENV", sys.prefix)


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    """A scripted provider registered as kind `fake` (spec: providers: {fake: {kind: fake}})."""
    provider = FakeProvider()
    registry.register("fake", provider)
    try:
        yield provider
    finally:
        registry.unregister("fake")
    assert not provider.unscripted, f"unscripted fake model calls: {[c.model for c in provider.unscripted]}"


SAMPLE_FILES = {
    "app.py": "def add(a, b):\n    return a - b\n",
    "lib/util.py": "import os\n\n\ndef home():\n    return os.environ['HOME']\n",
}


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """Write a workspace with SAMPLE_FILES and a spec file; returns the spec's path."""

    def write(text: str, files: dict[str, str] | None = None, name: str = "spec.yaml") -> Path:
        for rel, content in (SAMPLE_FILES if files is None else files).items():
            path = tmp_path / "ws" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        (tmp_path / "ws").mkdir(exist_ok=True)
        spec = tmp_path / name
        spec.write_text(textwrap.dedent(text).lstrip())
        return spec

    return write
