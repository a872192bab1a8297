"""Logging setup, called by the CLI only (importing the package configures nothing).

Logs go to stderr: a readable console renderer on a terminal, JSON lines otherwise or with
`--log-format json`. Values of secret-looking environment variables never reach a log line.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from orchestrator.errors import printable
from orchestrator.policy.secrets import known, redact


def _redactor() -> Any:
    """Masks every secret known when the event is logged (the run's keys included) and makes
    strings printable (a model's text could carry terminal escapes)."""

    def processor(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        secrets = known()
        for key, value in event.items():
            if isinstance(value, str):
                event[key] = printable(redact(value, secrets))
            elif isinstance(value, list | dict):
                text = repr(value)
                masked = redact(text, secrets)
                if masked != text:
                    event[key] = masked
        return event

    return processor


def configure_logging(fmt: str = "auto", level: str = "warning") -> None:
    json_lines = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    colors = not json_lines and sys.stderr.isatty() and "NO_COLOR" not in os.environ
    renderer: Any = structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer(colors=colors)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redactor(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
