"""OpenTelemetry traces of a run, on request (`--otel`, `RunOptions(otel=True)`): off by default,
and the SDK (the `[otel]` extra) is imported only then.

The endpoint comes from the standard variables, as the OTLP exporter reads them
(`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`, else
http://localhost:4318/v1/traces; headers, timeout, compression and certificates from their
`OTEL_EXPORTER_OTLP_*` variables too); the protocol is http/protobuf. The collector is egress like
any model host: before any model is called its host must pass the run's policy (a confidential
run exports only to this machine or `allow_hosts`, else exit 5), and after the run it is listed in
the egress report with its requests, bytes each way and the rule that allowed it.

Spans are built from the finished, typed result (`_otel_spans.py`), so they follow the GenAI
semantic conventions with the run's own timing. Prompts and file contents are never exported
(the result does not hold them); instructions and answers only with
`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`, and then the collector is held to the
rules of the most confidential file of the run.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from orchestrator.errors import SpecError
from orchestrator.outputs.result import HostReport, RunResult
from orchestrator.policy import host_rule
from orchestrator.policy.tracing import collector_rules

if TYPE_CHECKING:
    from orchestrator.workflow import Workflow

CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
PROTOCOLS = ("http/protobuf",)
DEFAULT_ENDPOINT = "http://localhost:4318"


def traces_endpoint() -> str:
    """The OTLP/HTTP traces URL the standard variables name."""
    if endpoint := os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return endpoint
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_ENDPOINT
    return f"{base.removesuffix('/')}/v1/traces"


def capture_content() -> bool:
    return os.environ.get(CONTENT_ENV, "").strip().lower() in ("1", "true", "yes")


@dataclass
class Traffic:
    requests: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, response: Any, *args: Any, **kwargs: Any) -> None:
        """A requests response hook: the body sent and the body received, as the wire had them."""
        body = response.request.body or b""
        with self.lock:
            self.requests += 1
            self.bytes_sent += len(body.encode() if isinstance(body, str) else body)
            self.bytes_received += len(response.content or b"")


@dataclass
class OtelExport:
    endpoint: str
    host: str  # as the egress report names hosts: host, or host:port off the scheme's default
    rule: str
    content: bool

    def export(self, result: RunResult) -> RunResult:
        """Send the run's spans; the result comes back with the collector in its egress report
        (and a warning when the collector did not take them)."""
        from orchestrator.runtime._otel_spans import export_spans

        traffic = Traffic()
        problem = export_spans(result, self.endpoint, traffic.count, self.content)
        warnings = list(result.warnings)
        if problem:
            warnings.append(f"OpenTelemetry: the spans could not be exported to {self.endpoint}: {problem}")
        hosts = list(result.egress.hosts)
        if traffic.requests:
            hosts.append(
                HostReport(
                    host=self.host,
                    models=[],
                    requests=traffic.requests,
                    bytes_sent=traffic.bytes_sent,
                    bytes_received=traffic.bytes_received,
                    rules=[f"OpenTelemetry collector; {self.rule}"],
                )
            )
        egress = result.egress.model_copy(update={"hosts": sorted(hosts, key=lambda h: h.host)})
        return result.model_copy(update={"egress": egress, "warnings": warnings})


def prepare_export(workflow: Workflow) -> OtelExport:
    """Check, before any model call, that the spans may go where the variables say: a protocol
    we speak (else exit 2), a host the policy allows (else exit 5), and the SDK installed."""
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol and protocol.strip() not in PROTOCOLS:
        raise SpecError(
            f"OpenTelemetry: protocol {protocol!r} is not supported",
            hint="set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf (the collector's port 4318)",
        )
    endpoint = traces_endpoint()
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SpecError(f"OpenTelemetry: {endpoint!r} is not an http(s) URL", hint="check OTEL_EXPORTER_OTLP_ENDPOINT")
    content = capture_content()
    # answers may repeat what the most confidential file said
    data_class = workflow.top_class if content else workflow.base_class
    policy = workflow.loaded.spec.policy
    rules = collector_rules(policy, workflow.floor, host=parts.hostname.lower(), data_class=data_class)
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        raise SpecError(
            "--otel needs the OpenTelemetry SDK and OTLP exporter",
            hint="pip install 'sovereign-orchestrator[otel]'",
        ) from None
    default_port = {"http": 80, "https": 443}[parts.scheme]
    port = parts.port or default_port
    host = parts.hostname if port == default_port else f"{parts.hostname}:{port}"
    return OtelExport(endpoint=endpoint, host=host, rule=host_rule(parts.hostname, rules), content=content)
