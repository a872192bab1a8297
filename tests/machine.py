"""What a test needs from the machine: where it is missing the test is skipped, but in CI (CI
set) it fails with the reason, since a silent skip there hides a missing install step (`make test`
installs bubblewrap, iproute2, Chromium and PostgreSQL where it can)."""

from __future__ import annotations

import os

import pytest


def unavailable(problem: str) -> None:
    """Skip for `problem`, or fail with it when CI is set."""
    if os.environ.get("CI"):
        pytest.fail(f"{problem} (CI is set: the machine must have it; `make test` installs it)", pytrace=False)
    pytest.skip(problem)
