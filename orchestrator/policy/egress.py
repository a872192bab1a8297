"""The egress report: every host the run's model clients contacted, which models, how many
requests and bytes each way, and the policy rule that allowed it.

Each provider's HTTP client gets event hooks (they see proxied and direct requests alike): a
request hook counts the request and its body, a response hook wraps the body stream to count what
comes back as it is read. Models served in-process (the embedded one) send nothing anywhere.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from orchestrator.errors import ResponseTooLarge


def host_name(url: str) -> str:
    """`host[:port]` of a URL as the report names hosts (no port when it is the scheme's default)."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def _host(url: Any) -> str:
    return host_name(str(url))


@dataclass
class HostTraffic:
    host: str
    models: set[str] = field(default_factory=set)
    rules: set[str] = field(default_factory=set)
    requests: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    note: str = ""  # what the counts do not cover (a tracing client counts nothing)
    nodes: set[str] = field(default_factory=set)  # the executor's nodes that sent it (none: this process)

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "models": sorted(self.models),
            "requests": self.requests,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "rules": sorted(self.rules),
            "note": self.note,
            "nodes": sorted(self.nodes),
        }


class Egress:
    def __init__(self, max_response_bytes: int = 8_000_000) -> None:
        self.max_response_bytes = max_response_bytes  # a larger body is cut off: ResponseTooLarge
        self.lock = threading.Lock()
        self.hosts: dict[str, HostTraffic] = {}
        self.in_process: set[str] = set()
        self.drained: dict[str, dict[str, int]] = {}  # host -> its counts at the last drain
        self.calls: list[dict[str, Any]] = []  # each answer: who served it, where, used or refused
        self.calls_drained = 0  # calls already sent by the last drain

    def _traffic(self, host: str, model: str, rule: str) -> HostTraffic:
        with self.lock:
            traffic = self.hosts.setdefault(host, HostTraffic(host))
            traffic.models.add(model)
            traffic.rules.add(rule)
            return traffic

    def _count(self, traffic: HostTraffic, sent: int = 0, received: int = 0, request: bool = False) -> None:
        with self.lock:
            traffic.requests += 1 if request else 0
            traffic.bytes_sent += sent
            traffic.bytes_received += received

    def declare(self, host: str, what: str, rule: str, note: str) -> None:
        """A host the run sends to outside the model clients (a tracing endpoint)."""
        traffic = self._traffic(host, what, rule)
        traffic.note = note

    def served(self, call: dict[str, Any]) -> None:
        """One answer's serving report (model, served_by, region, host, pinned, verdict, reason)."""
        with self.lock:
            self.calls.append(call)

    def hooks(self, model: str, rule: str) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
        """httpx event hooks (sync, async) that account one model's traffic (httpx or httpx2)."""
        egress = self
        # scheme and netloc -> its traffic record: a host's name is worked out once, not per event
        known: dict[tuple[str, bytes], HostTraffic] = {}

        def traffic_of(url: Any) -> HostTraffic:
            key = (url.scheme, url.netloc)
            traffic = known.get(key)
            if traffic is None:
                traffic = known[key] = egress._traffic(_host(url), model, rule)
            return traffic

        def on_request(request: Any) -> None:
            egress._count(traffic_of(request.url), sent=len(request.content), request=True)

        def on_response(response: Any) -> None:
            traffic = traffic_of(response.request.url)
            read = [0]

            def add(count: int) -> None:
                egress._count(traffic, received=count)
                read[0] += count
                if read[0] > egress.max_response_bytes:  # a hostile or broken host cannot fill memory
                    raise ResponseTooLarge(
                        f"{model}: the response passed {egress.max_response_bytes} bytes and was cut off", model=model
                    )

            response.stream = _counted(response.stream, add)

        async def on_request_async(request: Any) -> None:
            on_request(request)

        async def on_response_async(response: Any) -> None:
            on_response(response)

        sync: dict[str, list[Any]] = {"request": [on_request], "response": [on_response]}
        asynchronous: dict[str, list[Any]] = {"request": [on_request_async], "response": [on_response_async]}
        return sync, asynchronous

    def merge(self, report: dict[str, Any], node: str) -> None:
        """Traffic another process (a node of the executor) reported, as this run's, naming the node."""
        for host in report.get("hosts", []):
            with self.lock:
                traffic = self.hosts.setdefault(host["host"], HostTraffic(host["host"]))
                traffic.models.update(host["models"])
                traffic.rules.update(host["rules"])
                traffic.nodes.add(node)
                traffic.requests += host["requests"]
                traffic.bytes_sent += host["bytes_sent"]
                traffic.bytes_received += host["bytes_received"]
                traffic.note = traffic.note or host.get("note", "")
        with self.lock:
            self.in_process.update(report.get("in_process", []))
            self.calls.extend({**call, "node": node} for call in report.get("calls", []))

    def drain(self) -> dict[str, Any]:
        """The report of what was counted since the last drain, and counting starts again (a node
        of the executor sends its traffic to the run this way, subtask after subtask)."""
        counted = ("requests", "bytes_sent", "bytes_received")
        hosts = []
        with self.lock:
            for traffic in sorted(self.hosts.values(), key=lambda t: t.host):
                now = traffic.as_dict()
                before = self.drained.get(traffic.host, {})
                delta = {**now, **{key: now[key] - before.get(key, 0) for key in counted}}
                self.drained[traffic.host] = {key: now[key] for key in counted}
                if any(delta[key] for key in counted):
                    hosts.append(delta)
            calls, self.calls_drained = self.calls[self.calls_drained :], len(self.calls)
        return {"hosts": hosts, "in_process": sorted(self.in_process), "calls": calls}

    def report(self) -> dict[str, Any]:
        with self.lock:
            hosts = [traffic.as_dict() for traffic in sorted(self.hosts.values(), key=lambda t: t.host)]
            calls = list(self.calls)
        return {"hosts": hosts, "in_process": sorted(self.in_process), "calls": calls}


def _counted(stream: Any, add: Callable[[int], None]) -> Any:
    """The same body stream, reporting the bytes read through it (httpx checks the stream's type,
    so the wrapper is of the stream's own library: httpx, or httpx2 that newer OpenAI SDKs use)."""
    library = type(stream).__module__.partition(".")[0]
    asynchronous, counted_async, counted_sync = _stream_classes(library if library.startswith("httpx") else "httpx")
    if isinstance(stream, asynchronous):
        return counted_async(stream, add)
    return counted_sync(stream, add)


@cache
def _stream_classes(library: str) -> tuple[type, type, type]:
    """One httpx library's async stream class, and the counting wrappers (async, sync), made once."""
    module = importlib.import_module(library)

    class AsyncCounted(module.AsyncByteStream):  # type: ignore[misc, name-defined]
        def __init__(self, stream: Any, add: Callable[[int], None]) -> None:
            self.stream, self.add = stream, add

        async def __aiter__(self) -> AsyncIterator[bytes]:
            async for chunk in self.stream:
                self.add(len(chunk))
                yield chunk

        async def aclose(self) -> None:
            await self.stream.aclose()

    class SyncCounted(module.SyncByteStream):  # type: ignore[misc, name-defined]
        def __init__(self, stream: Any, add: Callable[[int], None]) -> None:
            self.stream, self.add = stream, add

        def __iter__(self) -> Iterator[bytes]:
            for chunk in self.stream:
                self.add(len(chunk))
                yield chunk

        def close(self) -> None:
            self.stream.close()

    return module.AsyncByteStream, AsyncCounted, SyncCounted
