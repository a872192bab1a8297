"""Where a run keeps what must survive it: checkpoints (LangGraph's own savers) under the
workspace's `.orchestrator/` folder, or a Postgres database for shared, multi-machine use.

Checkpoints are written with durability "sync": each finished task's writes are on disk before
the run goes on, so a crash, SIGKILL or Ctrl-C loses no finished subtask (measured here at about
1.5 ms a step, next to seconds of model time). They are read back with LangGraph's strict msgpack
allowlist (LangGraph's own safe types and the orchestrator's records), so a tampered checkpoint
cannot instantiate arbitrary objects. The state holds results only (file contents stay in the run
context), and no secret ever enters it.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from orchestrator.errors import CheckpointError, SpecError
from orchestrator.runtime.ledger import state_home

DATA_DIR_ENV = "ORCHESTRATOR_DATA_DIR"  # relocates .orchestrator/ (read-only workspaces, tests)
DURABILITY = "sync"


_KEYWORD_DSN = re.compile(r"^\s*(host|hostaddr|dbname|user|port|password|service|sslmode)\s*=", re.IGNORECASE)
_DSN_PASSWORD = re.compile(r"(?i)\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


def is_postgres(location: str) -> bool:
    """A postgres:// URL or a libpq keyword string (`host=db dbname=runs`), not a file name."""
    return location.startswith(("postgres://", "postgresql://")) or bool(_KEYWORD_DSN.match(location))


def public_location(location: str) -> str:
    """`location` fit to write down (run ledger, result.json, messages): a Postgres URL or keyword
    string loses its password (in the user info, a `password=` query parameter or keyword), which
    libpq takes again from PGPASSWORD or ~/.pgpass (or `resume --checkpoint URL`)."""
    if not is_postgres(location):
        return location
    if not location.startswith(("postgres://", "postgresql://")):
        return " ".join(_DSN_PASSWORD.sub("", location).split())
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(location)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() != "password"])
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}@{hostport}"
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def run_data_dir(workspace: Path, untrusted: bool = False) -> tuple[Path, str | None]:
    """The run data folder (checkpoints, the result cache) and a warning when the workspace's own
    was passed over: $ORCHESTRATOR_DATA_DIR (the operator's); outside the workspace in
    pull-request mode, or when files in WORKSPACE/.orchestrator are committed to git (state that
    comes with a repository is never trusted); else WORKSPACE/.orchestrator (git-ignored)."""
    if os.environ.get(DATA_DIR_ENV):
        return _ready(Path(os.environ[DATA_DIR_ENV])), None
    own = workspace / ".orchestrator"
    elsewhere = state_home() / "workspaces" / f"{workspace.name}-{_digest(str(workspace.resolve()))}"
    if untrusted:
        why = f"pull-request mode: {own} is ignored and run data goes to {elsewhere}" if own.exists() else None
        return _ready(elsewhere), why
    tracked = _committed(workspace, own)
    if tracked:
        why = (
            f"{own} holds files committed to git ({tracked}): state that comes with a repository is never "
            f"used; run data goes to {elsewhere}"
        )
        return _ready(elsewhere), why
    return _ready(own), None


def _ready(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# run data of Sovereign Orchestrator: checkpoints and caches\n*\n", encoding="utf-8")
    return folder


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _committed(workspace: Path, folder: Path) -> str:
    """The first file under `folder` that git tracks ("" when none, or outside git)."""
    if not folder.is_dir():
        return ""
    import subprocess

    try:
        done = subprocess.run(
            ["git", "ls-files", "--", str(folder)], cwd=workspace, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    tracked = done.stdout.split("\n", 1)[0].strip() if done.returncode == 0 else ""
    return tracked


def strict_serde() -> Any:
    """LangGraph's serializer in strict msgpack mode (as LANGGRAPH_STRICT_MSGPACK=true, without
    touching the environment): only its safe types and our records (CHECKPOINT_TYPES) load."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    from orchestrator.engine.state import CHECKPOINT_TYPES

    return JsonPlusSerializer(allowed_msgpack_modules=CHECKPOINT_TYPES)


class _Timed:
    """Measures what checkpointing costs: time spent writing checkpoints and task writes."""

    elapsed_s: float = 0.0
    puts: int = 0

    async def aput(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await super().aput(*args, **kwargs)  # type: ignore[misc]
        finally:
            self.elapsed_s += time.perf_counter() - started
            self.puts += 1

    async def aput_writes(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await super().aput_writes(*args, **kwargs)  # type: ignore[misc]
        finally:
            self.elapsed_s += time.perf_counter() - started


class _Carried:
    """Leaves out a task's writes when the run's finished-node store already holds that task's
    update (`carried`, set by the run): each node's update is stored once, and a resumed run gets
    it back from the store. Interrupts, errors and nodes that returned nothing are saved as ever."""

    carried: Any = None

    async def aput_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> Any:
        if self.carried is not None and self.carried.holds(task_id):
            return None
        return await super().aput_writes(config, writes, task_id, task_path)  # type: ignore[misc]


def memory_saver() -> Any:
    """LangGraph's in-memory checkpointer (strict msgpack), leaving to the store what it holds."""
    from langgraph.checkpoint.memory import InMemorySaver

    carried: Any = type("CarriedMemorySaver", (_Carried, InMemorySaver), {})
    return carried(serde=strict_serde())


@asynccontextmanager
async def open_checkpointer(location: str) -> AsyncIterator[Any]:
    """A checkpointer for `location`: a SQLite file path, or a postgres:// URL. Raises
    CheckpointError (exit 3) when the database cannot be opened."""
    opening, failures = _saver(location)
    async with AsyncExitStack() as stack:
        try:
            saver = await stack.enter_async_context(opening)
            await saver.setup()
        except failures as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            where = public_location(location)
            raise CheckpointError(f"cannot open the checkpoint database {where}: {detail}") from None
        yield saver


def _saver(location: str) -> tuple[AbstractAsyncContextManager[Any], tuple[type[Exception], ...]]:
    """The saver's context manager, and the errors that mean its database cannot be opened."""
    if is_postgres(location):
        try:
            import psycopg
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        except ImportError:
            raise SpecError(
                "--checkpoint: a Postgres checkpoint needs the postgres extra",
                hint="pip install 'sovereign-orchestrator[postgres]'",
            ) from None
        timed_pg: Any = type("TimedPostgresSaver", (_Timed, AsyncPostgresSaver), {})
        return timed_pg.from_conn_string(location, serde=strict_serde()), (OSError, psycopg.Error)
    return _sqlite_saver(location), (OSError, sqlite3.Error)


@asynccontextmanager
async def _sqlite_saver(location: str) -> AsyncIterator[Any]:
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    Path(location).parent.mkdir(parents=True, exist_ok=True)
    timed_sqlite: Any = type("TimedSqliteSaver", (_Carried, _Timed, AsyncSqliteSaver), {})
    async with aiosqlite.connect(location) as conn:
        await conn.execute("PRAGMA trusted_schema = OFF")  # no function a file's own schema declares
        yield timed_sqlite(conn, serde=strict_serde())


def finished_path(location: str, run_id: str) -> Path | None:
    """Where a run's finished-node store lives beside a SQLite checkpoint (None for Postgres)."""
    return None if is_postgres(location) else Path(location).parent / "finished" / f"{run_id}.sqlite"


async def prune_checkpoint(location: str, run_id: str) -> None:
    """Delete every checkpoint of one run (its LangGraph thread) and its finished-node store."""
    finished = finished_path(location, run_id)
    if finished is not None:  # with its write-ahead log, if a killed run left one
        for path in (finished, finished.with_name(finished.name + "-wal"), finished.with_name(finished.name + "-shm")):
            path.unlink(missing_ok=True)
    if not is_postgres(location) and not Path(location).exists():
        return
    async with open_checkpointer(location) as saver:
        await saver.adelete_thread(run_id)
