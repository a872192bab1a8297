"""What the providers' HTTP clients share: one SSL context per process for each HTTP library
(loading the CA bundle costs 20-40 ms, and every client used to load its own: a sync and an async
client per model, per run), and objects built on first use (a run calls its models
asynchronously, so the sync client LangChain wants is built only if something calls it so)."""

from __future__ import annotations

import importlib
import ssl
import threading
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.catalog import ProviderConfig
    from orchestrator.models.registry import CallSettings


@cache
def ssl_context(library: str = "httpx") -> ssl.SSLContext:
    """The context `library` (httpx, or httpx2 that newer OpenAI SDKs use) builds for its
    default `verify=True`, built once per process (SSL_CERT_FILE and SSL_CERT_DIR are honoured
    as the library honours them)."""
    context: ssl.SSLContext = importlib.import_module(library).create_ssl_context()
    return context


def endpoint(config: ProviderConfig, settings: CallSettings) -> tuple[str, str | None, dict[str, Any]]:
    """Where a call goes and with which key: the base URL (a serving pin's regional endpoint
    first), the API key (PermissionError when its variable is not set), and the fields the pin
    adds to the request body."""
    if not config.base_url:
        raise ValueError(f"provider '{config.name}' needs a base_url")
    key = config.api_key()
    if config.api_key_env and not key:
        raise PermissionError(f"environment variable {config.api_key_env} is not set")
    pin = settings.pinning
    base_url = (pin.base_url if pin is not None and pin.base_url else None) or config.base_url
    return base_url, key, dict(pin.fields) if pin is not None else {}


def library_of(client_class: type) -> str:
    """The HTTP library a client class belongs to (`httpx` or `httpx2`)."""
    for cls in client_class.__mro__:
        top = cls.__module__.partition(".")[0]
        if top.startswith("httpx"):
            return top
    return "httpx"


class Deferred:
    """Stands for the object `build()` returns, built (once, thread-safely) on first use of
    any of its attributes."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build: Callable[[], Any] | None = build
        self._value: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy, pickle and friends probing: not a use
            raise AttributeError(name)
        return getattr(self._built(), name)

    def _built(self) -> Any:
        with self._lock:
            if self._build is not None:
                self._value, self._build = self._build(), None
        return self._value
