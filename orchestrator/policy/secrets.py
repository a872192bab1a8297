"""Secrets never leave the process in anything the run writes or sends to a model.

The values to hide are those of the environment variables the spec's providers name in
`api_key_env`, and of any variable whose name looks secret (…API_KEY, …TOKEN, …SECRET,
…PASSWORD). They are replaced by `***` in logs, results, reports, checkpoints, the cache and
recordings, and in workspace files before they are put into a prompt.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

_SECRET_NAME = re.compile(r"(API_KEY|TOKEN|SECRET|PASSWORD)", re.IGNORECASE)
MASK = "***"


def secret_values(env_names: Iterable[str] = ()) -> list[str]:
    """Values to hide, longest first (so a value containing another is masked whole)."""
    names = {name for name in os.environ if _SECRET_NAME.search(name)} | set(env_names)
    values = {os.environ[name] for name in names if len(os.environ.get(name, "")) >= 8}
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


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
