"""Secrets never leave the process in anything the run writes or sends to a model.

The values to hide are those of the environment variables the spec's providers name in
`api_key_env`, and of any variable whose name looks secret (…API_KEY, …TOKEN, …SECRET,
…PASSWORD, …PASSWD), whatever their length. They are replaced by `***` in logs, results,
reports, checkpoints, the cache and recordings, and in workspace files before they are put into
a prompt. A value of 4 characters or more is masked wherever it appears; a shorter one where it
stands as a word of its own (masking every `ab` inside other words would garble the report).

The log processor masks what the run `remember`s too: it is configured before any spec is read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

_SECRET_NAME = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD)", re.IGNORECASE)
MASK = "***"
SHORT = 4  # values shorter than this are masked only as whole words
_remembered: set[str] = set()  # values a run named as secrets (its api_key_env), for the log processor


def secret_values(env_names: Iterable[str] = ()) -> list[str]:
    """Values to hide, longest first (so a value containing another is masked whole)."""
    names = {name for name in os.environ if _SECRET_NAME.search(name)} | set(env_names)
    values = {os.environ[name] for name in names if os.environ.get(name, "").strip()}
    return sorted(values, key=len, reverse=True)


def remember(values: Iterable[str]) -> None:
    """Secrets of a run that the log processor must mask as well (the spec named them)."""
    _remembered.update(v for v in values if v)


def known() -> list[str]:
    """Every value to mask in a log line now: secret-named variables and what runs remembered."""
    return sorted(set(secret_values()) | _remembered, key=len, reverse=True)


@lru_cache(maxsize=64)
def _pattern(secrets: tuple[str, ...]) -> re.Pattern[str]:
    parts = [re.escape(s) if len(s) >= SHORT else rf"(?<![\w]){re.escape(s)}(?![\w])" for s in secrets]
    return re.compile("|".join(parts))


def redact(text: str, secrets: Iterable[str]) -> str:
    found = tuple(secrets)
    if not found or not text:
        return text
    return _pattern(found).sub(MASK, text)


def redact_tree(value: Any, secrets: list[str]) -> Any:
    """A copy of a JSON-like value with every string redacted."""
    if not secrets:
        return value
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {key: redact_tree(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_tree(item, secrets) for item in value]
    if isinstance(value, tuple):
        return tuple(redact_tree(item, secrets) for item in value)
    return value
