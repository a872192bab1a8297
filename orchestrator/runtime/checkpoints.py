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
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from orchestrator.errors import CheckpointError, SpecError

DATA_DIR_ENV = "ORCHESTRATOR_DATA_DIR"  # relocates .orchestrator/ (read-only workspaces, tests)
DURABILITY = "sync"


def is_postgres(location: str) -> bool:
    return location.startswith(("postgres://", "postgresql://"))


def public_location(location: str) -> str:
    """`location` fit to write down (run ledger, result.json): a Postgres URL loses its password,
    which libpq takes again from PGPASSWORD or ~/.pgpass (or `resume --checkpoint URL`)."""
    if not is_postgres(location):
        return location
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(location)
    if parts.password is None:
        return location
    userinfo, _, hostport = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo.partition(':')[0]}@{hostport}"))


def data_dir(workspace: Path) -> Path:
    """The run data folder: $ORCHESTRATOR_DATA_DIR, or WORKSPACE/.orchestrator (git-ignored)."""
    folder = Path(os.environ[DATA_DIR_ENV]) if os.environ.get(DATA_DIR_ENV) else workspace / ".orchestrator"
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# run data of Sovereign Orchestrator: checkpoints and caches\n*\n", encoding="utf-8")
    return folder


def default_checkpoint(workspace: Path) -> str:
    return str(data_dir(workspace) / "checkpoints.sqlite")


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
    timed_sqlite: Any = type("TimedSqliteSaver", (_Timed, AsyncSqliteSaver), {})
    async with aiosqlite.connect(location) as conn:
        yield timed_sqlite(conn, serde=strict_serde())


async def prune_checkpoint(location: str, run_id: str) -> None:
    """Delete every checkpoint of one run (its LangGraph thread)."""
    if not is_postgres(location) and not Path(location).exists():
        return
    async with open_checkpointer(location) as saver:
        await saver.adelete_thread(run_id)
