"""A recording HTTP forward proxy for tests only: clients reach it through HTTP_PROXY, it logs
every request (host, path, bytes each way, the body sent) and forwards it to the loopback server
that plays that host. It is the independent witness an egress report is compared with."""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tests.servers.loopback import LoopbackServer, QuietHandler

HOP_HEADERS = {"connection", "proxy-connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class Exchange:
    host: str
    method: str
    path: str
    body: bytes
    status: int
    bytes_received: int  # the response body the client was sent


@dataclass
class ProxyState:
    upstreams: dict[str, str]  # host the client asked for -> "127.0.0.1:port" that plays it
    log: list[Exchange] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Handler(QuietHandler):
    def _forward(self) -> None:
        state: ProxyState = self.server.state
        target = urlsplit(self.path)  # absolute form: http://host[:port]/path
        host = target.netloc
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        upstream = state.upstreams.get(host)
        if upstream is None:  # a host nobody plays: record the attempt, answer 502
            with state.lock:
                state.log.append(Exchange(host, self.command, target.path, body, 502, 0))
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        connection = http.client.HTTPConnection(upstream, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        path = target.path + (f"?{target.query}" if target.query else "")
        connection.request(self.command, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        with state.lock:
            state.log.append(Exchange(host, self.command, target.path, body, response.status, len(data)))
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in HOP_HEADERS and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        connection.close()

    def do_CONNECT(self) -> None:
        """A tunnel (https, wss): recorded, never opened (no host here plays one)."""
        state: ProxyState = self.server.state
        with state.lock:
            state.log.append(Exchange(self.path, "CONNECT", "", b"", 502, 0))
        self.send_response(502)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = _forward
    do_POST = _forward


class RecordingProxy(LoopbackServer):
    state: ProxyState

    def __init__(self, upstreams: dict[str, str]) -> None:
        super().__init__(Handler, ProxyState(upstreams=dict(upstreams)))
