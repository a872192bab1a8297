"""One registry for provider kinds: the built-ins register through the same entry points
(`orchestrator.providers`) that plugins use, and tests swap models by registering a kind here.

A provider kind turns a route (`ollama/qwen3:8b`) plus its provider's settings into a LangChain
chat model, knows how to ask that model for JSON that follows a schema, and declares what it is
(`ProviderTraits`): nothing else in the orchestrator tests kind names or probes for methods.
Provider SDKs are imported inside `chat_model`, never at import time.

Plugin loading is guarded: a plugin that fails to load (or is not a ProviderKind) is recorded,
named in the error when a spec uses it, and never breaks the other kinds.
`ORCHESTRATOR_DISABLE_PLUGINS=a,b` skips entry points by name; `=all` keeps only the built-ins.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from orchestrator.errors import PluginError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from orchestrator.catalog import ProviderConfig, Route

ENTRY_POINT_GROUP = "orchestrator.providers"
DISABLE_ENV = "ORCHESTRATOR_DISABLE_PLUGINS"
BUILTIN_MODULE = "orchestrator.providers."


@dataclass(frozen=True)
class CallSettings:
    temperature: float = 0.2
    max_output_tokens: int = 1024
    timeout_s: float = 120.0  # from when the model starts serving a call, for a model that says when
    stall_s: float = 120.0  # a model that reports its progress: no new token for this long stops the call
    queue_wait_s: float = 1800.0  # such a model: the most a call may wait in its queue
    seed: int = 42
    retries: int = 2  # retries of a transient failure on one model, before falling back
    backoff_s: float = 1.0  # first backoff; doubles each retry (with jitter)
    max_wait_s: float = 30.0  # a longer Retry-After falls back at once instead of waiting
    cooldown_after: int = 3  # consecutive failed attempts that cool a provider down
    http_hooks: Any = field(default=None, compare=False)  # (sync, async) httpx event hooks: egress accounting
    pinning: Any = field(default=None, compare=False)  # the route's Pinning (catalog.serving): sent with each request

    @property
    def client_timeout_s(self) -> float:
        """The SDK client's own read timeout: a backstop behind the call's timeout (which the
        retries of a model on this machine double), so that the call's timeout is what fires."""
        return float(self.timeout_s * 2 ** min(self.retries, 4) + 30.0)


@dataclass(frozen=True)
class ToolOffer:
    """The tools of a native tool loop's turn ({name, description, parameters} each), and whether
    the model must call one."""

    tools: list[dict[str, Any]]
    required: bool = False


@dataclass(frozen=True)
class ProviderTraits:
    """What a provider kind is, declared by the kind itself."""

    real: bool = True  # reaches a real model (unit tests forbid these)
    in_process: bool = False  # the model runs in this process (or a worker of its own): no network
    self_hosted: bool = False  # served by the user's own machine or host: costed by time, not tokens
    exact_tokens: bool = False  # count_tokens uses the model's own tokenizer (not an estimate)
    lists_models: bool = False  # list_models() can ask the endpoint what it serves
    native_tools: bool = False  # the endpoint calls tools itself (`tool_kwargs`); else one JSON action per turn
    # its chat model says when it starts serving a call and how it progresses (models/_serving.py),
    # and keeps the call's bounds itself: timeout_s from the start, stall_s, queue_wait_s
    reports_serving: bool = False


def estimate_tokens(text: str) -> int:
    """A conservative token estimate for models whose tokenizer we do not have (3 chars/token)."""
    return len(text) // 3 + 1


class ProviderKind:
    """The base of every provider kind (built-in or plugin). `chat_model` and `structured_kwargs`
    are required; the rest have defaults that suit an endpoint with one structured mode."""

    traits: ClassVar[ProviderTraits] = ProviderTraits()

    def chat_model(self, route: Route, config: ProviderConfig, settings: CallSettings) -> BaseChatModel:
        raise NotImplementedError

    def structured_kwargs(self, schema: dict[str, Any], name: str, config: ProviderConfig, mode: str) -> dict[str, Any]:
        """Call options that make the model answer JSON following `schema` in `mode`."""
        raise NotImplementedError

    def structured_modes(self, config: ProviderConfig) -> list[str]:
        """The structured-output modes to try, best first (the first one the endpoint accepts is kept)."""
        return ["native"]

    def schema_in_prompt(self, mode: str) -> bool:
        """Whether `mode` needs the schema written into the prompt (plain JSON mode)."""
        return False

    def rejects_format(self, exc: BaseException) -> bool:
        """Whether the endpoint refused the structured mode itself (then the next mode is tried)."""
        return False

    def count_tokens(self, model: BaseChatModel, text: str) -> int:
        return estimate_tokens(text)

    def list_models(self, config: ProviderConfig, timeout_s: float) -> list[str]:
        raise NotImplementedError(f"provider kind of '{config.name}' cannot list its models")

    def structured_support(self, config: ProviderConfig, model: str) -> str:
        return " -> ".join(self.structured_modes(config))

    def unload_kwargs(self) -> dict[str, Any]:
        """Sent with the last call for a model before a single-model host switches models."""
        return {}

    def tool_kwargs(
        self, tools: list[dict[str, Any]], config: ProviderConfig, required: bool = False
    ) -> dict[str, Any]:
        """Call options that offer `tools` ({name, description, parameters}) to a kind with
        `native_tools`: what LangChain's `bind_tools` binds (OpenAI's function format), computed
        without a model so that the options are part of a call's key even on replay. `required`:
        the model must call one (kinds whose endpoint has no such option leave it to the prompt)."""
        from langchain_core.utils.function_calling import convert_to_openai_tool

        return {"tools": [convert_to_openai_tool(tool) for tool in tools]}


class RealModelsForbidden(RuntimeError):
    """Raised when a test that forbids real model calls reaches a real provider."""


@dataclass
class Registry:
    kinds: dict[str, ProviderKind] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)  # entry point name -> why it did not load
    loaded: bool = False
    allow_real: bool = True

    def _load(self) -> None:
        if self.loaded:
            return
        self.loaded = True
        disabled = {name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()}
        for point in entry_points(group=ENTRY_POINT_GROUP):
            builtin = point.value.startswith(BUILTIN_MODULE)
            if point.name in self.kinds or (not builtin and ({"all", point.name} & disabled)):
                continue
            try:
                kind = point.load()
            except Exception as exc:  # noqa: BLE001 - a plugin's own code: any failure is reported, by name
                self.broken[point.name] = f"{point.value} failed to load: {type(exc).__name__}: {exc}"
                continue
            if not isinstance(kind, ProviderKind):
                self.broken[point.name] = f"{point.value} is a {type(kind).__name__}, not a ProviderKind"
                continue
            self.kinds[point.name] = kind

    def register(self, name: str, kind: ProviderKind) -> None:
        self._load()
        self.kinds[name] = kind
        self.broken.pop(name, None)

    def unregister(self, name: str) -> None:
        self.kinds.pop(name, None)

    def names(self) -> list[str]:
        self._load()
        return sorted(self.kinds)

    def get(self, name: str, calling: bool = True) -> ProviderKind:
        """The provider kind; `calling=False` when no model of it will be called (replays)."""
        self._load()
        kind = self.kinds.get(name)
        if kind is None:
            if name in self.broken:
                raise PluginError(f"provider kind '{name}': plugin {self.broken[name]}")
            raise KeyError(f"unknown provider kind '{name}' (known: {', '.join(self.names())})")
        if calling and kind.traits.real and not self.allow_real:
            raise RealModelsForbidden(f"real model calls are forbidden here (provider kind '{name}')")
        return kind


registry = Registry()


def register_provider(name: str, kind: ProviderKind) -> None:
    """Register a provider kind under `name` (specs then use `providers: {X: {kind: NAME}}`), as
    the `orchestrator.providers` entry points do for plugins; it replaces a kind of that name."""
    registry.register(name, kind)


@contextmanager
def forbid_real_models() -> Iterator[None]:
    """Within the block, building a chat model of a real provider kind raises (for unit tests)."""
    previous = registry.allow_real
    registry.allow_real = False
    try:
        yield
    finally:
        registry.allow_real = previous
