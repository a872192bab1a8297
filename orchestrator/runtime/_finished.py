"""The finished-node store: each node's update written to SQLite (synchronously, committed) the
moment the node returns, before the next node starts. LangGraph saves a finished task's writes in
the background; a SIGKILL in between lost finished subtasks, and a stop by a signal could leave one
out of the partial report. Keyed by LangGraph's task id, which a resumed run reaches again."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from orchestrator.engine.state import CallRecord, PlanRecord
from orchestrator.errors import CheckpointError


class NodeUpdate(BaseModel):
    """What a node may return (the parts of the graph state our nodes write)."""

    model_config = ConfigDict(extra="forbid")

    results: list[CallRecord] | None = None
    outputs: dict[str, CallRecord] | None = None
    visits: dict[str, int] | None = None
    plan: PlanRecord | None = None
    aggregate: CallRecord | None = None

    def as_update(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in type(self).model_fields if getattr(self, key) is not None}


class FinishedStore:
    """One run's finished nodes in `path` (a file of the run's data folder), or in memory."""

    def __init__(self, path: Path | None) -> None:
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(path or ":memory:", check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:  # a folder that is a file, no permission: exit 3 before any call
            raise CheckpointError(f"cannot keep the run's finished nodes in {path}: {exc}") from None
        self.conn.execute("PRAGMA trusted_schema = OFF")
        self.conn.execute("CREATE TABLE IF NOT EXISTS finished (task TEXT PRIMARY KEY, node TEXT, update_json TEXT)")
        self.conn.commit()

    def get(self, task_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT update_json FROM finished WHERE task = ?", (task_id,)).fetchone()
        return NodeUpdate.model_validate_json(row[0]).as_update() if row else None

    def put(self, task_id: str, node: str, update: dict[str, Any]) -> None:
        if not update:
            return
        data = NodeUpdate.model_validate(update).model_dump_json(exclude_none=True)
        self.conn.execute("INSERT OR REPLACE INTO finished VALUES (?, ?, ?)", (task_id, node, data))
        self.conn.commit()  # on disk before the node's update reaches the graph

    def updates(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT update_json FROM finished ORDER BY rowid").fetchall()
        return [NodeUpdate.model_validate_json(row[0]).as_update() for row in rows]

    def close(self) -> None:
        self.conn.close()
