"""Headless Chromium for tests, driven over the DevTools protocol on a pipe (no extra library).

Chromium talks to the network on its own account (time checks, account lists, search preconnects,
its updater; which ones depends on the build), whatever flags it is given. Those requests belong to
the browser, not to the page. The DevTools protocol tells them apart: every request a page makes
(its document, frames, workers, images, fetches, websockets) is reported on the session of the
target that made it, and the browser's own requests are reported on none. `page_requests` loads a
page with every target auto-attached and returns what the page asked for.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# ask, in its own words, that the browser keep quiet (it still may: the protocol tells us apart)
QUIET = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--no-pings",
    "--password-store=basic",
    "--disable-features=NetworkTimeServiceQuerying,Translate,MediaRouter,OptimizationHints",
]
# schemes that never leave the machine: a page's own file, inline data, blobs
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "devtools:")
TIMEOUT_S = 120
# this long without an event from the browser: release any target still waiting on its start
QUIET_S = 10


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Chromium is not installed: `make test` installs it (apt-get install chromium)")
    return found


def browse(page: Path, *args: str, scripts: bool = True) -> str:
    """Run a fresh headless Chromium on a file; its stdout (e.g. --dump-dom)."""
    with _profile() as profile:
        argv = [
            chromium(),
            *QUIET,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=3000",  # let timers and late loads happen before the dump
            *([] if scripts else ["--blink-settings=scriptEnabled=false"]),
            *args,
            page.as_uri(),
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@dataclass
class Request:
    url: str
    kind: str  # the protocol's resource type (Document, Image, Fetch, WebSocket, ...)
    target: str  # the type of the target that made it (page, iframe, worker, ...)


def page_requests(page: Path, proxy: str | None = None, budget_ms: int = 3000) -> list[Request]:
    """Every request that `page` (its frames and workers included) makes while it loads and for
    `budget_ms` of virtual time after, except those that stay on the machine (file:, data:, ...).
    `proxy` routes the browser through a recording proxy as well (a second, blunter witness)."""
    extra = [f"--proxy-server={proxy}", "--proxy-bypass-list=<-loopback>"] if proxy else []
    with DevTools(extra) as devtools:
        return [r for r in devtools.load(page.as_uri(), budget_ms) if not r.url.startswith(LOCAL_SCHEMES)]


def evaluate(page: Path, expression: str) -> Any:
    """The value of a JavaScript expression in `page` once it has loaded (returned by value)."""
    with DevTools([]) as devtools:
        return devtools.evaluate(page.as_uri(), expression)


@contextlib.contextmanager
def _profile() -> Iterator[str]:
    profile = tempfile.mkdtemp(prefix="orchestrator-chromium-")
    try:
        yield profile
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class _Session:
    kind: str
    requests: list[Request] = field(default_factory=list)


class DevTools:
    """One browser on `--remote-debugging-pipe`: Chromium reads commands on fd 3 and writes
    replies and events on fd 4, each a JSON message ended by a NUL byte."""

    def __init__(self, extra: list[str]) -> None:
        self.extra = extra
        self._ids = iter(range(1, 1 << 30))
        self._replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._lock = threading.Lock()
        self.sessions: dict[str, _Session] = {}

    def __enter__(self) -> DevTools:
        self._stack = contextlib.ExitStack()
        profile = self._stack.enter_context(_profile())
        to_child, self._write = os.pipe()
        self._read, from_child = os.pipe()
        argv = [chromium(), *QUIET, f"--user-data-dir={profile}", "--remote-debugging-pipe", *self.extra]

        def fds() -> None:
            # in the child: its fd 3 reads our commands, its fd 4 writes to us (dup2 clears
            # close-on-exec; the pipes' own ends, which might sit at 3 or 4, are moved up first)
            reads, writes = os.dup(to_child), os.dup(from_child)
            os.dup2(reads, 3)
            os.dup2(writes, 4)

        # close_fds would close 3 and 4 after `fds` ran; our other descriptors are not inheritable
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=fds,
            close_fds=False,
        )
        os.close(to_child)
        os.close(from_child)
        threading.Thread(target=self._reader, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            os.close(self._write)
        self.process.kill()
        self.process.wait(timeout=TIMEOUT_S)
        with contextlib.suppress(OSError):
            os.close(self._read)
        self._stack.close()

    def _reader(self) -> None:
        buffer = b""
        while chunk := os.read(self._read, 1 << 16):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        self._replies.setdefault(message["id"], queue.Queue()).put(message)
                else:
                    self._events.put(message)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        """A command and its reply (the protocol's error raises)."""
        number = next(self._ids)
        with self._lock:
            replies = self._replies.setdefault(number, queue.Queue())
        message: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        reply = replies.get(timeout=TIMEOUT_S)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    def _until(self, awaited: str, session: str, enough: str | None = None) -> None:
        """Handle events (attaching to new targets, keeping requests) until `awaited` arrives, or
        until the browser goes quiet after `enough` arrived."""
        deadline = time.monotonic() + TIMEOUT_S
        seen: list[str] = []
        while True:
            try:
                event = self._events.get(timeout=QUIET_S)
            except queue.Empty:
                if enough is not None and f"{enough} page" in seen:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"no {awaited} in {TIMEOUT_S} s; the last events: {seen[-20:]}") from None
                # a target still paused on its start holds its parent's load: let every one run
                for paused in list(self.sessions):
                    with contextlib.suppress(RuntimeError, queue.Empty):
                        self.send("Runtime.runIfWaitingForDebugger", session=paused)
                continue
            method, params, source = event.get("method"), event.get("params", {}), event.get("sessionId")
            seen.append(f"{method} {self.sessions[source].kind if source in self.sessions else source}")
            watched = self.sessions.get(source or "")
            if method == "Target.attachedToTarget":
                self._watch(params["sessionId"], params["targetInfo"]["type"])
            elif method == "Network.requestWillBeSent" and watched:
                watched.requests.append(Request(params["request"]["url"], params.get("type", "Other"), watched.kind))
            elif method == "Network.webSocketCreated" and watched:
                watched.requests.append(Request(params["url"], "WebSocket", watched.kind))
            elif method == awaited and source == session:
                return

    def _watch(self, session: str, kind: str) -> None:
        """Record a target's requests, and attach (paused) to every target it starts."""
        self.sessions[session] = _Session(kind)
        with contextlib.suppress(RuntimeError):  # a worker has no Page domain
            self.send("Network.enable", session=session)
        auto = {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True}
        with contextlib.suppress(RuntimeError):
            self.send("Target.setAutoAttach", auto, session=session)
        with contextlib.suppress(RuntimeError):
            self.send("Runtime.runIfWaitingForDebugger", session=session)

    def evaluate(self, url: str, expression: str) -> Any:
        """Open `url` in a new page and, once it has loaded, the value of `expression` in it."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self._watch(session, "page")
        self.send("Page.enable", session=session)
        self.send("Page.navigate", {"url": url}, session=session)
        self._until("Page.loadEventFired", session)
        said = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
        if "exceptionDetails" in said:
            raise RuntimeError(f"the page's script failed: {said['exceptionDetails']}")
        return said["result"].get("value")

    def load(self, url: str, budget_ms: int) -> list[Request]:
        """Open `url` in a new page and let it run `budget_ms` of virtual time; every request made."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self._watch(session, "page")
        self.send("Page.enable", session=session)
        self.send("Page.navigate", {"url": url}, session=session)
        # once it has loaded (or, with a frame that never finishes, parsed and gone quiet), its
        # timers run ahead on virtual time, whether or not a fetch is still pending
        self._until("Page.loadEventFired", session, enough="Page.domContentEventFired")
        policy = {"policy": "advance", "budget": budget_ms}
        self.send("Emulation.setVirtualTimePolicy", policy, session=session)
        self._until("Emulation.virtualTimeBudgetExpired", session)
        return [r for s in self.sessions.values() for r in s.requests if r.url != url]
