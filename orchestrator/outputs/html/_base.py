"""What every part of the HTML report shares: escaping (everything from models, specs and
repositories is hostile text), the status palette, and number formats."""

from __future__ import annotations

import html
import re
from typing import Any

STATUS_COLORS = {
    "ok": "#2e7d32",
    "failed": "#c62828",
    "partial": "#ef6c00",
    "not_run": "#9e9e9e",
    "start": "#37474f",
    "end": "#37474f",
}
SEVERITIES = ("critical", "high", "medium", "low", "info")
_LANG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$")


def esc(text: Any) -> str:
    """Text safe in HTML content and in quoted attribute values."""
    return html.escape("" if text is None else str(text), quote=True)


def clip(text: Any, limit: int) -> str:
    value = "" if text is None else str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def anchor(prefix: str, text: str) -> str:
    """An id made of safe characters only (a subtask id is model-chosen in a planned run)."""
    return prefix + "-" + (re.sub(r"[^A-Za-z0-9_-]+", "_", text)[:60] or "_")


def lang_attr(lang: str | None) -> str:
    """A `lang` attribute when the role's language is a well-formed tag, else nothing."""
    return f' lang="{esc(lang)}"' if lang and _LANG.match(lang) else ""


def status_color(status: str) -> str:
    return STATUS_COLORS.get(status, "#616161")


def badge(text: str, kind: str) -> str:
    return f'<span class="badge b-{esc(kind)}">{esc(text)}</span>'


def fmt_ms(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms / 60_000:.1f} min"


def fmt_bytes(count: int) -> str:
    for unit, size in (("MB", 1 << 20), ("kB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def fmt_cost(cost: float | None) -> str:
    return "unknown" if cost is None else f"${cost:.4f}"


def table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    """A table of already-escaped cells."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    klass = f' class="{esc(cls)}"' if cls else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
