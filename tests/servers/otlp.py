"""An OTLP/HTTP trace receiver for tests only: it takes `POST /v1/traces` (protobuf, gzip or
not), parses each request with the OpenTelemetry protobuf definitions (the `opentelemetry-proto`
package) and keeps every span with its resource, plus the raw bodies, for the tests to assert on."""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.servers.loopback import LoopbackServer, QuietHandler


def value_of(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    status_code: int
    service: str


@dataclass
class ReceiverState:
    spans: list[ReceivedSpan] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)  # as sent on the wire
    lock: threading.Lock = field(default_factory=threading.Lock)


class Handler(QuietHandler):
    def do_POST(self) -> None:
        state: ReceiverState = self.server.state
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        data = gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body
        request = ExportTraceServiceRequest.FromString(data)
        spans = []
        for resource_spans in request.resource_spans:
            resource = {a.key: value_of(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        ReceivedSpan(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            kind=span.kind,
                            start_ns=span.start_time_unix_nano,
                            end_ns=span.end_time_unix_nano,
                            attributes={a.key: value_of(a.value) for a in span.attributes},
                            status_code=span.status.code,
                            service=str(resource.get("service.name")),
                        )
                    )
        with state.lock:
            state.bodies.append(body)
            state.spans += spans
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200 if self.path == "/v1/traces" else 404)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


class OtlpReceiver(LoopbackServer):
    state: ReceiverState

    def __init__(self) -> None:
        super().__init__(Handler, ReceiverState())
