"""The list of runs on this machine (`orchestrator runs`, `resume`, `runs prune`).

One small SQLite file in the user's state folder ($XDG_STATE_HOME/sovereign-orchestrator, by
default ~/.local/state/sovereign-orchestrator) records each run: its spec and overrides (to
rebuild the workflow on resume), where its checkpoint is, where its outputs go, and its status.
No secret is stored: overrides name environment variables, never their values.

A second table finds each run's stored result (`result.json`, kept in the run data folder
whatever formats the run wrote) and how its outputs were written, so `orchestrator report RUN_ID`
can rebuild them.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    spec_name TEXT NOT NULL,
    spec_path TEXT NOT NULL,
    overrides TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    output_dir TEXT,
    formats TEXT,
    status TEXT NOT NULL,
    exit_code INTEGER,
    started_at TEXT NOT NULL,
    finished_at TEXT
)
"""


RESULTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    output_dir TEXT,
    formats TEXT NOT NULL,
    line_counts TEXT NOT NULL
)
"""


@dataclass
class StoredResult:
    """Where a run's result.json is kept, and how its outputs were written."""

    run_id: str
    path: str
    output_dir: str | None
    formats: list[str]
    line_counts: dict[str, int]


@dataclass
class RunEntry:
    run_id: str
    spec_name: str
    spec_path: str
    overrides: list[str]
    checkpoint: str
    output_dir: str | None
    formats: list[str] | None
    status: str
    exit_code: int | None
    started_at: str
    finished_at: str | None

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def state_home() -> Path:
    """This user's state folder for the tool: $XDG_STATE_HOME/sovereign-orchestrator."""
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "sovereign-orchestrator"


def ledger_path() -> Path:
    return state_home() / "runs.sqlite"


def machine_key() -> bytes:
    """A random key of this user's, outside every repository (mode 0600), that signs what the
    tool keeps (the result cache), so that a file committed to a repository cannot pass for it."""
    path = state_home() / "machine.key"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(os.urandom(32))
    return path.read_bytes()


@contextmanager
def _connect() -> Iterator[sqlite3.Connection]:
    path = ledger_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.execute(SCHEMA)
        conn.execute(RESULTS_SCHEMA)
        yield conn
        conn.commit()
    finally:
        conn.close()


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def start_run(entry: RunEntry) -> None:
    with _connect() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                entry.run_id,
                entry.spec_name,
                entry.spec_path,
                json.dumps(entry.overrides),
                entry.checkpoint,
                entry.output_dir,
                json.dumps(entry.formats) if entry.formats is not None else None,
                entry.status,
                entry.exit_code,
                entry.started_at,
                entry.finished_at,
            ),
        )


def finish_run(run_id: str, status: str, exit_code: int) -> None:
    with _connect() as conn:
        conn.execute(
            "UPDATE runs SET status = ?, exit_code = ?, finished_at = ? WHERE run_id = ?",
            (status, exit_code, now(), run_id),
        )


def _entry(row: tuple[Any, ...]) -> RunEntry:
    return RunEntry(
        run_id=row[0],
        spec_name=row[1],
        spec_path=row[2],
        overrides=json.loads(row[3]),
        checkpoint=row[4],
        output_dir=row[5],
        formats=json.loads(row[6]) if row[6] else None,
        status=row[7],
        exit_code=row[8],
        started_at=row[9],
        finished_at=row[10],
    )


def get_run(run_id: str) -> RunEntry | None:
    with _connect() as conn:
        row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return _entry(row) if row else None


def list_runs(limit: int = 50) -> list[RunEntry]:
    with _connect() as conn:
        rows = conn.execute("SELECT * FROM runs ORDER BY started_at DESC LIMIT ?", (limit,)).fetchall()
    return [_entry(row) for row in rows]


def parse_age(text: str) -> timedelta:
    """`7d`, `12h`, `30m`, `2w` as a duration."""
    match = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text)
    if not match:
        raise ValueError(f"'{text}' is not an age like 7d, 12h, 30m or 2w")
    amount, unit = int(match.group(1)), match.group(2)
    return {
        "m": timedelta(minutes=amount),
        "h": timedelta(hours=amount),
        "d": timedelta(days=amount),
        "w": timedelta(weeks=amount),
    }[unit]


def runs_older_than(age: timedelta) -> list[RunEntry]:
    cutoff = (datetime.now(UTC) - age).isoformat(timespec="seconds")
    with _connect() as conn:
        rows = conn.execute("SELECT * FROM runs WHERE started_at < ?", (cutoff,)).fetchall()
    return [_entry(row) for row in rows]


def forget_run(run_id: str) -> None:
    stored = stored_result(run_id)
    if stored is not None:
        Path(stored.path).unlink(missing_ok=True)
    with _connect() as conn:
        conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
        conn.execute("DELETE FROM results WHERE run_id = ?", (run_id,))


def store_result(stored: StoredResult) -> None:
    with _connect() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO results VALUES (?,?,?,?,?)",
            (stored.run_id, stored.path, stored.output_dir, json.dumps(stored.formats), json.dumps(stored.line_counts)),
        )


def stored_result(run_id: str) -> StoredResult | None:
    with _connect() as conn:
        row = conn.execute("SELECT * FROM results WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        return None
    return StoredResult(row[0], row[1], row[2], json.loads(row[3]), json.loads(row[4]))
