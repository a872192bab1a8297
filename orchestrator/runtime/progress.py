"""Progress on stderr: a live per-node table on a terminal, plain lines in CI or when piped.
Names and notes come from specs and models: every one is made printable (one line, no control
characters, no markup) before it reaches the terminal or the CI log."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

from orchestrator.errors import printable


class LineProgress:
    """One line per event; what CI logs show."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def started(self, node: str, key: str, model: str) -> None:
        label = node if key == node else f"{node}[{key}]"
        self._line(f"> {printable(label)} on {printable(model)}")

    def finished(self, node: str, key: str, status: str, model: str | None, latency_ms: int, tokens: int) -> None:
        label = node if key == node else f"{node}[{key}]"
        mark = "ok" if status == "ok" else "FAILED"
        self._line(f"{mark} {printable(label)} {printable(model or '-')} {latency_ms / 1000:.1f}s {tokens} tokens")

    def note(self, message: str) -> None:
        self._line(f"note: {printable(message)}")


class LiveProgress:
    """A rich live table, one row per node and subtask (imported only on a terminal)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True, no_color="NO_COLOR" in os.environ)
        self.rows: dict[str, dict[str, Any]] = {}
        self.notes: list[str] = []
        self.live = Live(self._table(), console=self.console, refresh_per_second=4, transient=False)

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.update(self._table())
        self.live.__exit__(None, None, None)

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title="orchestrator", expand=False)
        for column in ("node", "subtask", "model", "status", "time", "tokens"):
            table.add_column(column)
        from rich.text import Text

        now = time.monotonic()
        for row in self.rows.values():
            elapsed = row.get("latency") or (now - row["since"])
            cells = (row["node"], row["key"], row["model"], row["status"], f"{elapsed:.1f}s", str(row["tokens"]))
            table.add_row(*(Text(printable(cell)) for cell in cells))  # Text: no markup from a spec or a model
        for note in self.notes:
            table.add_row("note", "", Text(printable(note)), "", "", "")
        return table

    def started(self, node: str, key: str, model: str) -> None:
        row = self.rows.setdefault(f"{node}/{key}", {"node": node, "key": key, "since": time.monotonic(), "tokens": 0})
        row.update(model=model, status="running", latency=None)
        self.live.update(self._table())

    def finished(self, node: str, key: str, status: str, model: str | None, latency_ms: int, tokens: int) -> None:
        row = self.rows.setdefault(f"{node}/{key}", {"node": node, "key": key, "since": time.monotonic()})
        row.update(model=model or "-", status=status, latency=latency_ms / 1000, tokens=tokens)
        self.live.update(self._table())

    def note(self, message: str) -> None:
        self.notes.append(message)
        self.live.update(self._table())


def interactive() -> bool:
    """A live display only on a terminal and never in CI."""
    return sys.stderr.isatty() and not os.environ.get("CI") and os.environ.get("TERM") != "dumb"
