"""The library's loggers: structlog's, silent until the caller configures structlog.

Unconfigured, structlog prints every event to stdout; a library must not (a Python caller's
stdout is its own). So every module logs through `get_logger(__name__)` from here: until
`structlog.configure()` has been called (the CLI does, to stderr; a Python caller may), a log
call is one attribute check and nothing is formatted or written. Configuring nothing at import.
"""

from __future__ import annotations

from typing import Any

import structlog


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


class QuietLogger:
    """structlog's logger for `name` once structlog is configured, a no-op until then."""

    __slots__ = ("_logger",)

    def __init__(self, name: str | None) -> None:
        self._logger = structlog.get_logger(name)

    def __getattr__(self, method: str) -> Any:
        if not structlog.is_configured():
            return _nothing
        return getattr(self._logger, method)


def get_logger(name: str | None = None) -> Any:
    return QuietLogger(name)
