"""The shared, multi-machine checkpointer: `--checkpoint postgresql://...` against a real
PostgreSQL server started by the test. A run stopped by its budget resumes from Postgres without
re-running finished subtasks; the password in the URL is written nowhere; pruning deletes the
run's checkpoints from the database."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.process import orchestrator
from tests.servers.model_server import ModelServer
from tests.servers.postgres import PostgresServer
from tests.test_durable import MODELS, result_of, write_spec

PASSWORD = "pg-PASSWORD-7f3a9c"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer(PASSWORD) as running:
        yield running


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer({name: "canned" for name in MODELS}) as running:
        yield running


def checkpoints_of(postgres: PostgresServer, run_id: str) -> int:
    (row,) = postgres.query("SELECT COUNT(*) FROM checkpoints WHERE thread_id = %s", run_id)
    return int(str(row[0]))


def test_a_budget_stop_resumes_from_postgres(server: ModelServer, postgres: PostgresServer, tmp_path: Path) -> None:
    server.state.canned_usage = (2000, 500)  # every answer reports 2500 tokens
    spec = write_spec(tmp_path, server.url, limits=", max_tokens: 5500, max_output_tokens: 600, concurrency: 1")
    out = tmp_path / "out"
    first = orchestrator("run", spec, "--output-dir", out, "--no-cache", "--checkpoint", postgres.url)
    assert first.returncode == 4, first.stderr
    stopped = result_of(out)
    run_id = stopped["run_id"]
    assert stopped["checkpoint"]["backend"] == "postgres" and checkpoints_of(postgres, run_id) > 0
    assert PASSWORD not in stopped["checkpoint"]["location"]
    (entry,) = json.loads(orchestrator("runs", "--json").stdout)
    assert entry["status"] == "budget_exceeded" and entry["checkpoint"] == postgres.url.replace(f":{PASSWORD}@", "@")

    # the ledger holds no password: without one the resume cannot log in, says so and loses nothing
    denied = orchestrator("resume", run_id, "--no-cache", env={"PGPASSWORD": "wrong"})
    assert denied.returncode == 3 and "password authentication failed" in denied.stderr, denied.stderr
    assert checkpoints_of(postgres, run_id) > 0

    calls_before = sum(server.state.requests.values())
    resumed = orchestrator(
        "resume", run_id, "--set", "limits.max_tokens=100000", "--no-cache", env={"PGPASSWORD": PASSWORD}
    )
    assert resumed.returncode == 0, resumed.stderr
    finished = result_of(out)
    assert finished["status"] == "ok" and len(finished["subtasks"]) == 3
    assert sum(server.state.requests.values()) - calls_before == 3 - len(stopped["subtasks"]) + 1

    written = [*out.rglob("*"), *Path(os.environ["ORCHESTRATOR_DATA_DIR"]).rglob("*")]
    written += list(Path(os.environ["XDG_STATE_HOME"]).rglob("*"))
    for file in written:
        if file.is_file():
            assert PASSWORD.encode() not in file.read_bytes(), file

    pruned = orchestrator("runs", "prune", "--older-than", "0m", env={"PGPASSWORD": PASSWORD})
    assert pruned.returncode == 0 and "pruned 1 run(s)" in pruned.stdout, pruned.stderr
    assert checkpoints_of(postgres, run_id) == 0


def test_resume_takes_the_url_again_with_its_password(
    server: ModelServer, postgres: PostgresServer, tmp_path: Path
) -> None:
    server.state.canned_usage = (2000, 500)
    spec = write_spec(tmp_path, server.url, limits=", max_tokens: 3000, max_output_tokens: 600, concurrency: 1")
    out = tmp_path / "out"
    first = orchestrator("run", spec, "--output-dir", out, "--no-cache", "--checkpoint", postgres.url)
    assert first.returncode == 4, first.stderr
    run_id = result_of(out)["run_id"]
    before = dict(server.state.requests)
    resumed = orchestrator(
        "resume", run_id, "--set", "limits.max_tokens=100000", "--no-cache", "--checkpoint", postgres.url
    )
    assert resumed.returncode == 0, resumed.stderr
    assert result_of(out)["status"] == "ok"
    assert sum(server.state.requests.values()) - sum(before.values()) == 3  # two subtasks and the aggregate


def test_an_unreachable_checkpoint_database_exits_3_before_any_model_call(
    server: ModelServer, postgres: PostgresServer, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path, server.url)
    down = postgres.url.replace(f":{postgres.port}/", f":{postgres.port + 1}/")  # nothing listens there
    failed = orchestrator("run", spec, "--output-dir", tmp_path / "out", "--checkpoint", down)
    assert failed.returncode == 3, failed.stderr
    assert "cannot open the checkpoint database" in failed.stderr and "Traceback" not in failed.stderr
    assert PASSWORD not in failed.stderr
    assert sum(server.state.requests.values()) == 0
    (entry,) = json.loads(orchestrator("runs", "--json").stdout)
    assert (entry["status"], entry["exit_code"]) == ("error", 3)


@pytest.mark.parametrize(
    ("location", "public"),
    [
        (
            "postgresql://u:pw@db.example:5432/runs?sslmode=require",
            "postgresql://u@db.example:5432/runs?sslmode=require",
        ),
        ("postgres://u:p%40ss@[::1]/runs", "postgres://u@[::1]/runs"),
        ("postgresql://u@host/runs", "postgresql://u@host/runs"),
        ("/work/.orchestrator/checkpoints.sqlite", "/work/.orchestrator/checkpoints.sqlite"),
    ],
)
def test_a_checkpoint_location_is_written_down_without_its_password(location: str, public: str) -> None:
    from orchestrator.runtime.checkpoints import public_location

    assert public_location(location) == public
