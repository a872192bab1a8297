"""What orchestration costs next to the model (issue 30), as behaviour: the library prints nothing
unless the caller configures logging; HTTP clients share one SSL context and the sync client is
built only when something calls the model synchronously (and still counts its egress); each
node's update is stored once (the finished-node store, not the checkpoint's writes too), in WAL
mode, committed before the node returns; no store at all is built for a run in memory."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import RunOptions, load_spec, prepare_workflow, run_workflow
from orchestrator.testing import FakeProvider, valid_answer
from tests.servers.model_server import ModelServer

SCRIPT = """
import sys
from pathlib import Path
from orchestrator import RunOptions, load_spec, prepare_workflow, register_provider, run_workflow
from orchestrator.testing import FakeProvider, valid_answer
if sys.argv[2] == "configured":
    import structlog
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
fake = FakeProvider()
fake.script("m", valid_answer)
register_provider("fake", fake)
outcome = run_workflow(prepare_workflow(load_spec(Path(sys.argv[1]))), RunOptions(write=False))
assert outcome.exit_code == 0, outcome.result.status
"""


def spec_file(folder: Path, tasks: int = 2) -> Path:
    (folder / "ws").mkdir(parents=True, exist_ok=True)
    (folder / "ws" / "app.py").write_text("def add(a, b):\n    return a - b\n")
    listed = "".join(f"  - {{role: debug, instruction: look {i}}}\n" for i in range(tasks))
    spec = folder / "spec.yaml"
    spec.write_text(
        "version: 1\nname: lean\ngoal: Review.\nworkspace: ws\nproviders: {fake: {kind: fake}}\n"
        f"models: {{default: fake/m}}\nroles: {{debug: {{tools: []}}}}\nfail_on: none\ntasks:\n{listed}"
    )
    return spec


@pytest.mark.parametrize("logging", ["unconfigured", "configured"])
def test_the_python_api_prints_nothing_unless_logging_is_configured(logging: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(spec_file(tmp_path)), logging], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # a Python caller's stdout is its own
    if logging == "unconfigured":
        assert done.stderr == ""
    else:  # the caller asked for the library's lines: one per node, and the run's
        assert done.stderr.count("node.finished") == 3 and "run.finished" in done.stderr


def test_each_node_update_is_stored_once_in_wal_mode(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("m", valid_answer)
    checkpoint = tmp_path / "state" / "checkpoints.sqlite"
    options = RunOptions(write=False, checkpoint=str(checkpoint), cache=False, ledger=False)
    outcome = run_workflow(prepare_workflow(load_spec(spec_file(tmp_path, tasks=3))), options)
    assert outcome.exit_code == 0
    store = checkpoint.parent / "finished" / f"{outcome.run_id}.sqlite"
    with sqlite3.connect(store) as conn:
        kept = dict(conn.execute("SELECT task, node FROM finished").fetchall())
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # the plan node returned nothing (the spec lists the tasks): nothing of it to keep
    assert sorted(kept.values()) == ["aggregate", "debug", "debug", "debug"]
    with sqlite3.connect(checkpoint) as conn:
        written = {task for (task,) in conn.execute("SELECT DISTINCT task_id FROM writes")}
    assert not written & set(kept)  # the checkpoint left every finished node's update to the store
    assert len(fake.calls) == 4


def test_a_run_in_memory_builds_no_store_on_disk(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("m", valid_answer)
    options = RunOptions(write=False, checkpoint="memory", cache=False, ledger=False)
    outcome = run_workflow(prepare_workflow(load_spec(spec_file(tmp_path))), options)
    assert outcome.exit_code == 0 and len(outcome.result.subtasks) == 2
    assert not list(tmp_path.rglob("*.sqlite"))


def test_a_put_returns_once_its_update_is_committed(tmp_path: Path) -> None:
    """What a SIGKILL right after a node returned may rely on: another connection sees the row."""
    from orchestrator.runtime._finished import FinishedStore

    store = FinishedStore(tmp_path / "finished.sqlite")

    async def put() -> None:
        await store.put("task-1", "plan", {"visits": {"plan": 1}})

    asyncio.run(put())
    with sqlite3.connect(tmp_path / "finished.sqlite") as conn:
        assert conn.execute("SELECT node FROM finished WHERE task = 'task-1'").fetchone() == ("plan",)
    assert store.holds("task-1") and store.get("task-1") == {"visits": {"plan": 1}}
    store.close()


@pytest.mark.integration  # a loopback model server over real HTTP
def test_clients_share_one_ssl_context_and_the_sync_one_is_built_when_used() -> None:
    from orchestrator.catalog import ProviderConfig, Route
    from orchestrator.models.registry import CallSettings
    from orchestrator.policy.egress import Egress
    from orchestrator.providers._http import ssl_context
    from orchestrator.providers.openai import provider

    with ModelServer({"m": "canned"}) as server:
        config = ProviderConfig(name="api", kind="openai", base_url=f"{server.url}/v1")
        egress = Egress()
        settings = CallSettings(http_hooks=egress.hooks("api/m", "test"))
        ssl_context.cache_clear()
        models = [provider.chat_model(Route("api", "m"), config, settings) for _ in range(3)]
        assert ssl_context.cache_info().misses == 1  # one context for every client
        assert all(model.client._build is not None for model in models)  # no sync client yet
        assert asyncio.run(models[0].ainvoke("hi")).content
        assert models[0].client._build is not None
        assert models[1].invoke("hi").content  # sync: built now, with the egress hooks
        assert models[1].client._build is None
        (host,) = egress.report()["hosts"]
        assert host["requests"] == 2 and host["bytes_received"] > 0
