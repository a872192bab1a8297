"""A finished run as OpenTelemetry spans, following the GenAI semantic conventions:

    invoke_agent SPEC            the run (gen_ai.conversation.id: the run id)
    └── invoke_agent NODE        one per call record: the plan, each subtask, proposal, merge, aggregate
        ├── chat MODEL           one per model attempt (CLIENT; INTERNAL for the in-process model):
        │                        gen_ai.provider.name, gen_ai.request.model, gen_ai.usage.*, error.type
        ├── execute_tool TOOL    tool calls of agentic roles
        ├── check NAME           patch checks (git apply --check, the project's checks)
        └── wait CAUSE           waits for a slot, the model's queue, a rate limit, a backoff, the budget

Times are the run's own (`timing` offsets from `clock_origin`). No span carries what a tool
returned. Imported only with `--otel`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from orchestrator.engine.state import CallRecord, Span
from orchestrator.outputs.events import run_end_ms, timed_events
from orchestrator.outputs.result import RunResult

# gen_ai.provider.name: the convention's well-known values where a provider is one of them
PROVIDERS = {
    "openai": "openai",
    "deepseek": "deepseek",
    "mistral": "mistral_ai",
    "groq": "groq",
    "anthropic": "anthropic",
    "perplexity": "perplexity",
    "xai": "x_ai",
    "cohere": "cohere",
}
SCOPE = "orchestrator"
FLUSH_MS = 30_000


class _Witness(SpanExporter):
    """The OTLP exporter, remembering whether every export succeeded."""

    def __init__(self, inner: OTLPSpanExporter) -> None:
        self.inner = inner
        self.failed = 0

    def export(self, spans: Any) -> SpanExportResult:
        result = self.inner.export(spans)
        if result is not SpanExportResult.SUCCESS:
            self.failed += 1
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def export_spans(
    result: RunResult, endpoint: str, on_response: Callable[..., None], content: bool = False
) -> str | None:
    """Send the run's spans to `endpoint`; None when the collector took them, else what failed."""
    import requests

    from orchestrator import __version__

    session = requests.Session()
    session.hooks["response"].append(on_response)
    witness = _Witness(OTLPSpanExporter(endpoint=endpoint, session=session))
    service = os.environ.get("OTEL_SERVICE_NAME") or "sovereign-orchestrator"
    provider = TracerProvider(resource=Resource.create({"service.name": service, "service.version": __version__}))
    processor = BatchSpanProcessor(witness)
    provider.add_span_processor(processor)
    try:
        build_spans(result, provider.get_tracer(SCOPE, __version__), content)
        flushed = provider.force_flush(FLUSH_MS)
    finally:
        provider.shutdown()
        session.close()
    if witness.failed or not flushed:
        return "the collector did not accept them (see the log)" if flushed else "timed out"
    return None


def build_spans(result: RunResult, tracer: trace.Tracer, content: bool = False) -> None:
    origin = _epoch_ns(result.clock_origin or result.started_at)
    calls = [*([result.plan.call] if result.plan.call else []), *result.subtasks]
    calls += [result.aggregate] if result.aggregate else []
    end = origin + run_end_ms(calls, result.duration_ms) * 1_000_000
    root = tracer.start_span(
        f"invoke_agent {result.spec.name}",
        kind=SpanKind.INTERNAL,
        start_time=origin,
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": result.spec.name,
            "gen_ai.conversation.id": result.run_id,
            "gen_ai.usage.input_tokens": result.totals.tokens_in,
            "gen_ai.usage.output_tokens": result.totals.tokens_out,
            "orchestrator.run_id": result.run_id,
            "orchestrator.graph": result.spec.graph,
            "orchestrator.status": result.status,
            "orchestrator.exit_code": result.exit_code,
        },
    )
    if result.status == "provider_failure":
        root.set_attribute("error.type", "provider_failure")
        root.set_status(Status(StatusCode.ERROR, "a subtask failed on every model of its chain"))
    parent = trace.set_span_in_context(root)
    for call in calls:
        _node_span(result, call, tracer, parent, origin, content)
    root.end(end_time=end)


def _node_span(
    result: RunResult, call: CallRecord, tracer: trace.Tracer, parent: Any, origin: int, content: bool
) -> None:
    if call.timing is None:
        return
    name = call.node or call.role
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": name,
        "orchestrator.subtask.id": call.id,
        "orchestrator.role": call.role,
    }
    for key, value in (
        ("data_class", call.data_class),
        ("iteration", call.iteration),
        ("proposal_of", call.proposal_of),
    ):
        if value is not None:
            attributes[f"orchestrator.{key}"] = value
    if call.model:
        attributes["gen_ai.response.model"] = call.model
    start = origin + call.timing.started_ms * 1_000_000
    span = tracer.start_span(f"invoke_agent {name}", parent, SpanKind.INTERNAL, attributes, start_time=start)
    if not call.ok:
        span.set_attribute("error.type", call.error.kind if call.error else "_OTHER")
        span.set_status(Status(StatusCode.ERROR, call.error.message if call.error else "failed"))
    inside = trace.set_span_in_context(span)
    answered = next((e for e in reversed(timed_events(call)) if e.kind == "model" and e.status == "ok"), None)
    for event in timed_events(call):
        _event_span(result, call, event, tracer, inside, origin, content and event is answered)
    span.end(end_time=start + call.timing.duration_ms * 1_000_000)


def _event_span(
    result: RunResult, call: CallRecord, event: Span, tracer: trace.Tracer, parent: Any, origin: int, content: bool
) -> None:
    start = origin + event.started_ms * 1_000_000
    attributes: dict[str, Any] = {}
    kind = SpanKind.INTERNAL
    if event.kind == "model":
        info = result.models.get(event.name)
        provider, _, model = event.name.partition("/")
        kind = SpanKind.INTERNAL if info is not None and info.host is None else SpanKind.CLIENT
        name = f"chat {model}"
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": PROVIDERS.get(provider, provider),
            "gen_ai.request.model": model,
            "gen_ai.output.type": "json",
        }
        if info is not None and info.host:
            attributes["server.address"] = info.host
            if info.port:
                attributes["server.port"] = info.port
        if info is not None and info.country:
            attributes["orchestrator.model.country"] = info.country
        if event.tokens_in is not None:
            attributes["gen_ai.usage.input_tokens"] = event.tokens_in
        if event.tokens_out is not None:
            attributes["gen_ai.usage.output_tokens"] = event.tokens_out
        if content:
            attributes.update(_messages(call))
    elif event.kind == "tool":
        name = f"execute_tool {event.name}"
        attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": event.name}
    else:
        name = f"{event.kind} {event.name}"
        attributes = {f"orchestrator.{event.kind}.name": event.name}
    # a tool's span says which tool and how it ended, never what it returned (a file, a check's
    # output, an MCP server's answer): that is content, and even with content capture on the
    # spans carry only the instruction and the answer
    if event.detail and event.kind != "tool":
        attributes["orchestrator.detail"] = event.detail
    span = tracer.start_span(name, parent, kind, attributes, start_time=start)
    if event.status not in ("ok", "pass", "verified", "passed"):
        span.set_attribute("error.type", event.status)
        span.set_status(Status(StatusCode.ERROR, event.status))
    span.end(end_time=start + event.duration_ms * 1_000_000)


def _messages(call: CallRecord) -> dict[str, str]:
    """Opt-in content (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT): the instruction the
    node was given and the answer it validated; never the files."""
    user = [{"role": "user", "parts": [{"type": "text", "content": call.instruction}]}]
    answer = json.dumps(call.output or {}, ensure_ascii=False)
    assistant = [{"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}]
    return {
        "gen_ai.input.messages": json.dumps(user, ensure_ascii=False),
        "gen_ai.output.messages": json.dumps(assistant, ensure_ascii=False),
    }


def _epoch_ns(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1_000_000_000)
