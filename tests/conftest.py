from __future__ import annotations

import contextlib
import os
import signal
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.testing import FakeProvider, forbid_real_models, registry
from tests.machine import unavailable

# every process the tests start carries this pytest process's pid in its environment (workers,
# checks, servers, orphans whose parent was killed at a timeout): what is left at the end is found by it
OWNER = "ORCHESTRATOR_TESTS_OWNER"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs(problem): skip when `problem` is not empty; fail instead when CI is set")
    os.environ[OWNER] = str(os.getpid())
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        # a runner started in the background by a non-interactive shell (`make test &`, a CI step)
        # inherits SIGINT ignored, and so would every run the tests start: Ctrl-C could not stop
        # one, and the tests that press it would fail. A handler is reset to the default at exec.
        signal.signal(signal.SIGINT, signal.default_int_handler)


# first: xdist's own hook reads the xdist_group marks into the test ids (a mark added after it counts for nothing)
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The embedded model's tests go first, as one group: on several workers (`make test`:
    pytest-xdist, --dist loadgroup) one worker runs them one after another from the start while
    the others share the rest, and two of them never compete for the cores."""
    embedded = [item for item in items if item.get_closest_marker("embedded")]
    for item in embedded:
        item.add_marker(pytest.mark.xdist_group("embedded"))
    items[:] = embedded + [item for item in items if not item.get_closest_marker("embedded")]


def pytest_collection_finish(session: pytest.Session) -> None:
    """On an xdist worker with --dist loadgroup, every grouped test must carry its group in its id
    (that is how xdist keeps a group on one worker): a pytest that names tests otherwise would
    silently run the embedded model's tests on every worker at once (pytest-xdist#1386)."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    lost = [item.nodeid for item in session.items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
    if lost:
        raise pytest.UsageError(f"xdist groups are lost ({lost[0]}, ...): install the pytest the test extras pin")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test that needs what this machine lacks is skipped; in CI it fails with the reason: a
    silent skip there would hide a missing install step (`make test` installs what tests need)."""
    for marker in item.iter_markers("needs"):
        problem = str(marker.args[0]) if marker.args else ""
        if problem:
            unavailable(problem)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop every process this pytest process's tests left running, wherever its parent went (the
    controller of several workers has none: each worker stops its own)."""
    mine, left = str(os.getpid()), []
    for entry in Path("/proc").glob("[0-9]*") if sys.platform == "linux" else []:
        with contextlib.suppress(OSError, ValueError):
            environ = (entry / "environ").read_bytes().split(b"\0")
            if f"{OWNER}={mine}".encode() in environ and int(entry.name) != os.getpid():
                left.append(int(entry.name))
    for pid in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    if left:
        session.config.stash[LEFT_BEHIND] = len(left)


LEFT_BEHIND = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if count := config.stash.get(LEFT_BEHIND, 0):
        terminalreporter.write_line(f"stopped {count} process(es) the tests left running", yellow=True)


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
