"""Test doubles for users and for the project's own tests: scripted fake providers, canned
answers, and a guard that forbids real model calls.

A `FakeProvider` is registered as a provider kind (the same registry seam as real providers):

    provider = FakeProvider()
    registry.register("fake", provider)     # spec: providers: {fake: {kind: fake}}
    provider.script("m", valid_answer)      # model fake/m answers every call validly

Each model name maps to a script: a function of the call that returns the answer text or
raises. Every call is recorded; a call for a model with no script is recorded as unscripted and
raises (check `provider.unscripted` at the end of a test: an error raised inside a node is taken
for a provider failure and hidden by the fallback logic). `forbid_real_models()` makes building a
model of a real provider kind raise, for tests that must not reach one.

Roles with tools run a loop. With a `FakeProvider` each turn is one JSON action (the answer, or
`tool_call("read_file", path=...)`); a `NativeToolsProvider` is offered the tools natively and a
script answers a turn with `native_call("read_file", path=...)` (an AIMessage with tool calls).
`call.schema` is the schema of the answer asked for, inside a turn's action schema too, and
`call.tools` the tools the turn offered. `in_order(a, b, ...)` answers calls in order, and
fails loudly when they run out.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict

from orchestrator.catalog import ProviderConfig
from orchestrator.models.contract import contract_for
from orchestrator.models.registry import (
    CallSettings,
    ProviderKind,
    ProviderTraits,
    RealModelsForbidden,
    forbid_real_models,
    registry,
)
from orchestrator.providers._client import PARALLEL as EMBEDDED_PARALLEL
from orchestrator.providers._llama import CONTEXT_WINDOW as EMBEDDED_CONTEXT_WINDOW
from orchestrator.providers._llama import weights_path

__all__ = [
    "EMBEDDED_CONTEXT_WINDOW",
    "EMBEDDED_PARALLEL",
    "Call",
    "FakeProvider",
    "NativeToolsProvider",
    "RealModelsForbidden",
    "ScriptedChatModel",
    "UnscriptedCall",
    "answer_schema",
    "embedded_chat_model",
    "embedded_engine",
    "embedded_in_process",
    "embedded_tokens",
    "embedded_weights",
    "forbid_real_models",
    "in_order",
    "native_call",
    "packed_context",
    "registry",
    "repository_index",
    "tool_call",
    "valid_answer",
    "workspace_files",
]


@dataclass
class Call:
    model: str
    messages: list[BaseMessage]
    kwargs: dict[str, Any]

    @property
    def raw_schema(self) -> dict[str, Any]:
        """The schema the call was constrained by (a tool loop turn's: the answer or a tool call)."""
        return self.kwargs.get("schema") or {}

    @property
    def schema(self) -> dict[str, Any]:
        """The schema of the answer asked for (in a tool loop turn, the answer's branch)."""
        raw = self.raw_schema
        if _tool_branches(raw):
            return dict(raw["anyOf"][0])
        return raw

    @property
    def tools(self) -> list[str]:
        """The tools this call offered: natively, or as branches of its action schema."""
        native = [t["function"]["name"] for t in self.kwargs.get("tools") or []]
        return native or _tool_branches(self.raw_schema)

    @property
    def kind(self) -> str:
        """The output kind asked for, from the schema's top-level properties."""
        props = set(self.schema.get("properties", {}))
        for kind, key in (
            ("plan", "subtasks"),
            ("findings", "findings"),
            ("patches", "patches"),
            ("diagnosis", "root_cause"),
            ("docs", "markdown"),
            ("aggregate", "summary"),
            ("text", "text"),
        ):
            if key in props:
                return kind
        return "unknown"

    @property
    def user(self) -> str:
        return self.messages[-1].text

    @property
    def task(self) -> str:
        """The first user message: the role's task (later messages are a tool loop's turns)."""
        found = [m.text for m in self.messages if m.type == "human"]
        return found[0] if found else ""


def _tool_branches(schema: dict[str, Any]) -> list[str]:
    branches = schema.get("anyOf") if isinstance(schema, dict) else None
    if not isinstance(branches, list):
        return []
    names = [b.get("properties", {}).get("tool", {}).get("const") for b in branches[1:] if isinstance(b, dict)]
    return [n for n in names if isinstance(n, str)]


Script = Callable[[Call], str | AIMessage]


class UnscriptedCall(AssertionError):
    pass


class ScriptedChatModel(BaseChatModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_name: str
    provider: Any

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        call = Call(model=self.model_name, messages=list(messages), kwargs=dict(kwargs))
        answer = self.provider.answer(call)
        usage = UsageMetadata(input_tokens=11, output_tokens=7, total_tokens=18)
        if isinstance(answer, AIMessage):
            message = AIMessage(content=answer.content, tool_calls=answer.tool_calls, usage_metadata=usage)
        else:
            message = AIMessage(content=answer, usage_metadata=usage)
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        provider = self.provider
        with provider._lock:
            provider.in_flight[self.model_name] += 1
            provider.peak[self.model_name] = max(provider.peak[self.model_name], provider.in_flight[self.model_name])
            provider.peak["*"] = max(provider.peak["*"], sum(provider.in_flight.values()))
        try:
            if provider.delay_s:
                await asyncio.sleep(provider.delay_s)
            return self._generate(messages, stop, None, **kwargs)
        finally:
            with provider._lock:
                provider.in_flight[self.model_name] -= 1


@dataclass
class FakeProvider(ProviderKind):
    traits: ClassVar[ProviderTraits] = ProviderTraits(real=False)

    scripts: dict[str, Script] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    unscripted: list[Call] = field(default_factory=list)
    delay_s: float = 0.0
    in_flight: Counter[str] = field(default_factory=Counter)
    peak: Counter[str] = field(default_factory=Counter)  # most calls at once, per model and "*"
    built: list[tuple[str, int]] = field(default_factory=list)  # (model, seed) of every chat model built
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, model: str, handler: Script) -> None:
        self.scripts[model] = handler

    def answer(self, call: Call) -> str | AIMessage:
        with self._lock:
            self.calls.append(call)
        handler = self.scripts.get(call.model)
        if handler is None:
            with self._lock:
                self.unscripted.append(call)
            raise UnscriptedCall(f"no script for fake model '{call.model}'")
        return handler(call)

    def calls_to(self, model: str) -> list[Call]:
        return [c for c in self.calls if c.model == model]

    # the ProviderKind protocol
    def chat_model(self, route: Any, config: ProviderConfig, settings: CallSettings) -> BaseChatModel:
        self.built.append((route.model, settings.seed))
        return ScriptedChatModel(model_name=route.model, provider=self)

    def structured_kwargs(
        self, schema: dict[str, Any], name: str, config: ProviderConfig, mode: str = "native"
    ) -> dict[str, Any]:
        return {"schema": schema}


@dataclass
class NativeToolsProvider(FakeProvider):
    """A scripted provider whose endpoint calls tools natively (OpenAI or Ollama `tools`)."""

    traits: ClassVar[ProviderTraits] = ProviderTraits(real=False, native_tools=True)


def tool_call(tool: str, **args: Any) -> str:
    """A turn's action that calls a tool (for a provider without native tool calls)."""
    return json.dumps({"tool": tool, **args})


def native_call(tool: str, **args: Any) -> AIMessage:
    """A turn's answer that calls a tool natively."""
    return AIMessage(content="", tool_calls=[{"name": tool, "args": args, "id": f"call_{tool}"}])


def in_order(*answers: str | AIMessage | Script) -> Script:
    """A script that gives these answers to successive calls (a function answers its call), and
    fails loudly when a call comes after the last one."""
    remaining = list(answers)
    lock = threading.Lock()

    def script(call: Call) -> str | AIMessage:
        with lock:
            if not remaining:
                raise UnscriptedCall(f"{call.model}: more calls than scripted answers")
            answer = remaining.pop(0)
        return answer(call) if callable(answer) else answer

    return script


# ---------------------------------------------------------------- canned answers


def valid_answer(call: Call) -> str:
    """A minimal valid answer for whatever kind the call asks for."""
    files = _files(call.schema)
    file = files[0] if files else "app.py"
    kind = call.kind
    if kind == "plan":
        roles = call.schema["properties"]["subtasks"]["items"]["properties"]["role"]["enum"]
        return json.dumps(
            {
                "subtasks": [
                    {"id": f"x{i}", "role": r, "instruction": f"do {r}", "files": []} for i, r in enumerate(roles)
                ]
            }
        )
    if kind == "findings":
        return json.dumps(
            {
                "findings": [
                    {"severity": "medium", "file": file, "line": 1, "title": "t", "detail": "d", "suggestion": "s"}
                ]
            }
        )
    if kind == "patches":
        return json.dumps({"patches": [{"file": file, "diff": "--- a/x\n+++ b/x\n", "rationale": "r"}]})
    if kind == "diagnosis":
        return json.dumps({"root_cause": "cause", "evidence": ["e1"], "fix": None})
    if kind == "docs":
        return json.dumps({"title": "عنوان", "markdown": "نص `Store`"})
    if kind == "aggregate":
        return json.dumps({"summary": "all done", "decisions": ["d"], "disagreements": [], "next_steps": ["n"]})
    if kind == "text":
        return json.dumps({"text": "hello"})
    raise AssertionError(f"unexpected schema {call.schema}")


def _files(schema: Any) -> list[str]:
    if isinstance(schema, dict):
        props = schema.get("properties")
        if isinstance(props, dict) and isinstance(props.get("file"), dict) and "enum" in props["file"]:
            return list(props["file"]["enum"])
        for value in schema.values():
            found = _files(value)
            if found:
                return found
    if isinstance(schema, list):
        for item in schema:
            found = _files(item)
            if found:
                return found
    return []


# ---------------------------------------------------------------- for baselines beside the orchestrator


def answer_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema the built-in output kind `kind` asks models for (plan, findings, ...)."""
    return contract_for(kind).schema


def embedded_weights() -> Path:
    """The embedded model's GGUF file (for running llama.cpp directly beside the orchestrator)."""
    return weights_path()


def workspace_files(root: Path, include: tuple[str, ...] = ("**/*.py",)) -> list[Any]:
    """The files of a workspace as a run reads them (`SourceFile`s)."""
    from orchestrator.workspace import collect_files

    return collect_files(root, list(include), []).files


def repository_index(files: list[Any]) -> Any:
    """The repository map's index (symbols, who defines what) of `files` (`SourceFile`s), as a
    run builds it (for measuring it: bench/packing.py)."""
    from orchestrator.engine._repomap import RepoIndex

    return RepoIndex(files)


def packed_context(files: list[Any], text: str, budget: int, index: Any) -> tuple[Any, str]:
    """`files` packed for a task about `text` within `budget` estimated tokens, most relevant first,
    and the repository map of the files not packed whole in a quarter of it (no policy: every file
    visible), as a run does for one call."""
    from orchestrator.engine._packing import pack_files
    from orchestrator.engine._relevance import Focus, order
    from orchestrator.models.registry import estimate_tokens

    share = budget // 4
    packed = pack_files(order(files, Focus(text), index), budget - share, estimate_tokens)
    whole = {entry["path"] for entry in packed.packed if entry["how"] == "whole"}
    ranked = [path for path, _ in index.rank([f.path for f in files if f.path not in whole], {}, set())]
    outline, _ = index.outline(ranked, share, estimate_tokens)
    return packed, outline


def embedded_engine(parallel: int = 1, constraint: str = "llguidance") -> Any:
    """The embedded model's decoding engine, run in this process as its worker runs it (for
    measuring the worker against its engine). `constraint`: llguidance, grammar, grammar-first."""
    import os

    from orchestrator.providers._engine import Engine

    return Engine(str(weights_path()), EMBEDDED_CONTEXT_WINDOW, parallel, os.cpu_count() or 1, constraint)


def embedded_chat_model(**fields: Any) -> Any:
    """The embedded model's LangChain chat model (it calls the model's worker process)."""
    from orchestrator.providers.embedded import EmbeddedChatModel

    return EmbeddedChatModel(model_path=str(weights_path()), **fields)


def embedded_in_process() -> Any:
    """(llama, lock): a llama-cpp-python instance of the embedded model shared in this process
    (how the embedded model ran before its worker process; test servers and baselines use it)."""
    from orchestrator.providers._llama import shared_llama

    return shared_llama(weights_path(), EMBEDDED_CONTEXT_WINDOW)


def embedded_tokens(text: str) -> int:
    """The embedded model's token count of `text` (its own tokenizer)."""
    from orchestrator.providers._llama import count_tokens

    return count_tokens(weights_path(), text)
