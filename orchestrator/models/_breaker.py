"""Cooling down what keeps failing, for the rest of the run (no request storm).

Modelled on LiteLLM's router cooldowns. Transient failures count per key, and after
`threshold` consecutive failed attempts the key is opened: every later attempt fails at once.
The key is the provider for failures without an HTTP status (refused, timeouts, dropped
connections: the host is down, whatever the model) and the model for failures with one (429
and 5xx are often per model, e.g. a free model on OpenRouter). A provider that refuses the
credentials (401/403) is opened at the first refusal; a model it does not serve (404) alone.
A success closes nothing that was opened: the run is short, and flapping costs more than it
saves. A provider with a pool of hosts counts its transient failures per host instead (_hosts.py)
and is opened here when every host of it is cooling.

Only errors that say a model is broken count (`ProviderError.breaks`): a timeout of a model on
this machine says the machine is busy, and never cools the model down. A remote model's timeout
counts as before.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from orchestrator.errors import ProviderError


@dataclass
class Breaker:
    threshold: int = 3
    failures: dict[str, int] = field(default_factory=dict)  # provider or route -> consecutive failures
    opened: dict[str, str] = field(default_factory=dict)  # provider or route ref -> why
    lock: threading.Lock = field(default_factory=threading.Lock)

    def why_open(self, provider: str, route: str) -> str | None:
        with self.lock:
            return self.opened.get(route) or self.opened.get(provider)

    def success(self, provider: str, route: str) -> None:
        with self.lock:
            self.failures[provider] = 0
            self.failures[route] = 0

    def open(self, key: str, why: str) -> None:
        """Cool a provider (or a route) down for the rest of the run."""
        with self.lock:
            self.opened.setdefault(key, why)

    def failure(self, provider: str, route: str, error: ProviderError) -> None:
        if not error.breaks:
            return
        with self.lock:
            if error.kind == "config":
                if error.status in (401, 403) or "credentials" in error.message or "API key" in error.message:
                    self.opened.setdefault(provider, f"credentials refused: {error.message}")
                elif error.status == 404:
                    self.opened.setdefault(route, f"model not served: {error.message}")
                return
            if error.retryable:
                key = provider if error.status is None else route
                count = self.failures.get(key, 0) + 1
                self.failures[key] = count
                if count >= self.threshold:
                    self.opened.setdefault(key, f"{count} consecutive failures, last: {error.message}")
