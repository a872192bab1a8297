"""OpenTelemetry on request: with `--otel` a real OTLP receiver on loopback gets the run's spans
(GenAI semantic conventions: names, attributes, parent links), and the collector is in the
egress report with the bytes it was sent; without `--otel` it gets nothing; the collector is
held to the policy like any host (a confidential run may not export elsewhere: exit 5, nothing
sent to any model); prompts and file contents never leave."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.process import modules_imported_by, orchestrator
from tests.servers.model_server import ModelServer
from tests.servers.otlp import OtlpReceiver, ReceivedSpan
from tests.servers.proxy import RecordingProxy

FILE_MARKER = "FILE-CONTENT-MARKER-5d1e"
CLIENT, INTERNAL = 3, 1  # OTLP span kinds


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer({name: "canned" for name in ("planner", "review", "spare", "debug")}) as running:
        running.state.canned_usage = (40, 9)
        yield running


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


def write_spec(tmp_path: Path, url: str, policy: str = "") -> Path:
    (tmp_path / "ws").mkdir(exist_ok=True)
    (tmp_path / "ws" / "app.py").write_text(f"SECRET = '{FILE_MARKER}'\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            name: traced
            goal: Review and debug.
            workspace: ws
            providers: {{onprem: {{kind: openai, base_url: '{url}/v1'}}}}
            tasks:
              - {{role: architecture_review, instruction: review the app}}
              - {{role: debug, instruction: debug the app}}
            models: {{planner: onprem/planner, architecture_review: [onprem/review, onprem/spare], debug: onprem/debug}}
            limits: {{retries: 0}}
            fail_on: none
            """
        )
        + policy
    )
    return spec


def otel_env(endpoint: str, **extra: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "NO_PROXY": "127.0.0.1,localhost", **extra}


def by_name(spans: list[ReceivedSpan]) -> dict[str, list[ReceivedSpan]]:
    found: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        found.setdefault(span.name, []).append(span)
    return found


def test_a_run_with_otel_sends_genai_spans_and_reports_the_collector_as_egress(
    server: ModelServer, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    server.fault("status", model="review", status=503)  # the review falls back to the spare model
    out = tmp_path / "out"
    done = orchestrator("run", write_spec(tmp_path, server.url), "--output-dir", out, "--otel", "--no-cache",
                        env=otel_env(receiver.url))  # fmt: skip
    assert done.returncode == 0, done.stderr
    spans = receiver.state.spans
    names = by_name(spans)
    (root,) = names["invoke_agent traced"]
    result = json.loads((out / "result.json").read_text())
    assert root.parent_id == "" and root.attributes["gen_ai.conversation.id"] == result["run_id"]
    assert root.attributes["gen_ai.operation.name"] == "invoke_agent" and root.service == "sovereign-orchestrator"
    assert {s.trace_id for s in spans} == {root.trace_id}  # one trace per run
    nodes = {
        s.attributes["gen_ai.agent.name"]: s for s in spans if s.name.startswith("invoke_agent ") and s is not root
    }
    assert set(nodes) == {"architecture_review", "debug", "aggregate"}
    assert all(n.parent_id == root.span_id for n in nodes.values())
    # the review's two model attempts: the failed one with its error type, then the answer
    review = nodes["architecture_review"]
    attempts = sorted((s for s in spans if s.parent_id == review.span_id and s.name.startswith("chat ")),
                      key=lambda s: s.start_ns)  # fmt: skip
    assert [s.name for s in attempts] == ["chat review", "chat spare"]
    failed, answered = attempts
    assert failed.attributes["error.type"] == "unavailable" and failed.status_code == 2  # STATUS_CODE_ERROR
    assert answered.kind == CLIENT and answered.attributes["gen_ai.operation.name"] == "chat"
    assert answered.attributes["gen_ai.request.model"] == "spare"
    assert answered.attributes["gen_ai.provider.name"] == "onprem"
    assert (
        answered.attributes["gen_ai.usage.input_tokens"] == 40
        and answered.attributes["gen_ai.usage.output_tokens"] == 9
    )
    assert answered.attributes["server.address"] == "127.0.0.1" and answered.attributes["server.port"] > 0
    assert root.start_ns <= review.start_ns <= failed.start_ns < answered.end_ns <= review.end_ns <= root.end_ns
    # nothing of the prompts or the files: no content attribute, and the marker is on no byte sent
    assert not any("gen_ai.input.messages" in s.attributes for s in spans)
    assert all(FILE_MARKER.encode() not in body for body in receiver.state.bodies)
    # the collector is egress: its host, the requests and bytes it was sent, the rule that allowed it
    host = receiver.url.removeprefix("http://")
    (collector,) = [h for h in result["egress"]["hosts"] if h["host"] == host and not h["models"]]
    assert collector["requests"] == len(receiver.state.bodies)
    assert collector["bytes_sent"] == sum(len(b) for b in receiver.state.bodies) and collector["bytes_received"] >= 0
    assert collector["rules"] == ["OpenTelemetry collector; data_class internal; this machine"]
    assert host in (out / "report.html").read_text() and host in (out / "report.md").read_text()


def test_without_otel_the_collector_receives_nothing(
    server: ModelServer, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    done = orchestrator("run", write_spec(tmp_path, server.url), "--output-dir", out, "--no-cache",
                        env=otel_env(receiver.url, OTEL_TRACES_EXPORTER="otlp"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert receiver.state.bodies == [] and sum(server.state.requests.values()) > 0
    host = receiver.url.removeprefix("http://")
    assert all(h["host"] != host for h in json.loads((out / "result.json").read_text())["egress"]["hosts"])


def test_a_confidential_run_exports_only_to_an_allowed_collector(
    server: ModelServer, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path, server.url, "policy: {data_class: confidential}\n")
    refused = orchestrator("run", spec, "--output-dir", tmp_path / "out", "--otel", "--no-cache",
                           env=otel_env("http://collector.example:4318"))  # fmt: skip
    assert refused.returncode == 5, refused.stderr
    assert "OpenTelemetry" in refused.stderr and "confidential" in refused.stderr
    assert sum(server.state.requests.values()) == 0  # refused before any model was called
    # the same collector, once the operator lists it, receives the spans (played behind a proxy)
    spec.write_text(
        spec.read_text().replace(
            "{data_class: confidential}", "{data_class: confidential, allow_hosts: [collector.example]}"
        )
    )
    with RecordingProxy({"collector.example:4318": receiver.url.removeprefix("http://")}) as proxy:
        env = {**otel_env("http://collector.example:4318"), "HTTP_PROXY": proxy.url, "HTTPS_PROXY": proxy.url}
        allowed = orchestrator("run", spec, "--output-dir", tmp_path / "out", "--otel", "--no-cache", env=env)
    assert allowed.returncode == 0, allowed.stderr
    assert {e.host for e in proxy.state.log} == {"collector.example:4318"} and receiver.state.spans
    (collector,) = [h for h in json.loads((tmp_path / "out" / "result.json").read_text())["egress"]["hosts"]
                    if h["host"] == "collector.example:4318"]  # fmt: skip
    assert "in allow_hosts" in collector["rules"][0] and "data_class confidential" in collector["rules"][0]


def test_the_operators_floor_holds_the_collector_too(server: ModelServer, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, server.url)  # the spec itself sets no policy
    floor = tmp_path / "operator.yaml"
    floor.write_text("allow_hosts: [models.example]\n")  # the operator's floor: no other host
    refused = orchestrator("run", spec, "--output-dir", tmp_path / "out", "--otel", "--no-cache", "--policy", floor,
                           env=otel_env("http://collector.example:4318"))  # fmt: skip
    assert refused.returncode == 5, refused.stderr
    assert "OpenTelemetry" in refused.stderr and "collector.example is not in allow_hosts" in refused.stderr
    assert sum(server.state.requests.values()) == 0  # refused before any model was called


def test_content_is_exported_only_when_asked_for(server: ModelServer, receiver: OtlpReceiver, tmp_path: Path) -> None:
    env = otel_env(receiver.url, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
    done = orchestrator("run", write_spec(tmp_path, server.url), "--output-dir", tmp_path / "out", "--otel",
                        "--no-cache", env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    answered = [s for s in receiver.state.spans if "gen_ai.input.messages" in s.attributes]
    assert {s.name for s in answered} == {"chat review", "chat debug", "chat planner"}
    messages: Any = json.loads(next(s for s in answered if s.name == "chat debug").attributes["gen_ai.input.messages"])
    assert messages[0]["parts"][0]["content"] == "debug the app"  # the instruction, never the packed files
    assert all(FILE_MARKER.encode() not in body for body in receiver.state.bodies)


def test_an_unsupported_protocol_is_a_usage_error(server: ModelServer, tmp_path: Path) -> None:
    env = otel_env("http://127.0.0.1:4317", OTEL_EXPORTER_OTLP_PROTOCOL="grpc")
    done = orchestrator("run", write_spec(tmp_path, server.url), "--otel", "--output-dir", tmp_path / "o", env=env)
    assert done.returncode == 2 and "http/protobuf" in done.stderr
    assert sum(server.state.requests.values()) == 0


def sdk_modules_after(argv: list[str], env: dict[str, str]) -> list[str]:
    """Our OpenTelemetry module and the OTLP exporter, if a CLI run imported them (in a fresh
    interpreter). langsmith itself imports `opentelemetry.sdk.trace` when it is installed (it
    configures and sends nothing), so the SDK's own package is no witness."""
    sdk = ("orchestrator.runtime._otel_spans", "opentelemetry.exporter")
    return sorted(m for m in modules_imported_by(argv, env) if m.startswith(sdk))


def test_the_sdk_is_imported_only_with_otel(server: ModelServer, receiver: OtlpReceiver, tmp_path: Path) -> None:
    spec = str(write_spec(tmp_path, server.url))
    run = ["run", spec, "--output-dir", str(tmp_path / "out"), "--no-cache", "-q"]
    assert sdk_modules_after(run, otel_env(receiver.url)) == []
    assert receiver.state.bodies == []
    assert sdk_modules_after([*run, "--otel"], otel_env(receiver.url)) and receiver.state.bodies
