"""The one door to a forge's API: httpx to the CI's own API host and nowhere else. Every request
is a path under that base URL (no URL from a response or a review file is ever followed, no
redirect either), a hook refuses any request to another host, plain http is refused but on this
machine (the token would travel in clear), and proxies from the environment are not used for this
machine's addresses. Answers are bounded; errors carry the forge's message, never the token."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from orchestrator.catalog import is_loopback
from orchestrator.errors import PolicyError, PublishError, SpecError, printable

MAX_ANSWER_BYTES = 16_000_000
MAX_PAGES = 50
PER_PAGE = 100
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Endpoint:
    """An API's base URL, and the one host (with its port) the token may be sent to."""

    base: str
    host: str
    loopback: bool


def endpoint(url: str, variable: str) -> Endpoint:
    """The API base URL a CI variable names. Refused: not http(s), user info, a query; plain http
    to any host but this machine (exit 5)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.query:
        raise SpecError(f"{variable}: not an API base URL: {printable(url)}")
    loopback = is_loopback(parts.hostname)
    if parts.scheme == "http" and not loopback:
        raise PolicyError(
            f"{variable} is plain http to {parts.hostname}: the token would be sent in clear",
            hint="use the https URL of the API",
        )
    return Endpoint(base=url.strip().rstrip("/"), host=parts.netloc.lower(), loopback=loopback)


@dataclass
class Api:
    """Requests to one endpoint with the operator's token; `sent` lists them (method, path, status)."""

    point: Endpoint
    headers: dict[str, str]
    sent: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            base_url=self.point.base,
            headers={**self.headers, "User-Agent": "sovereign-orchestrator-publish"},
            follow_redirects=False,
            timeout=TIMEOUT_S,
            trust_env=not self.point.loopback,
            event_hooks={"request": [self._only_our_host]},
        )

    def close(self) -> None:
        self.client.close()

    def _only_our_host(self, request: httpx.Request) -> None:
        if request.url.netloc.decode("ascii").lower() != self.point.host:
            raise PolicyError(f"refused to send the token to {request.url.host}: only {self.point.host} gets it")

    def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        """One request; its JSON answer (None when empty). Raises PublishError on a refusal."""
        try:
            response = self.client.request(method, path, json=body, params=params)
        except httpx.HTTPError as exc:
            raise PublishError(f"{method} {path}: {type(exc).__name__}: {printable(exc)}") from None
        self.sent.append(f"{method} {path} {response.status_code}")
        if len(response.content) > MAX_ANSWER_BYTES:
            raise PublishError(f"{method} {path}: the answer is larger than {MAX_ANSWER_BYTES} bytes")
        if response.status_code >= 300:
            raise PublishError(f"{method} {path}: {response.status_code} {_why(response)}", status=response.status_code)
        if not response.content:
            return None
        try:
            return response.json()
        except json.JSONDecodeError:
            raise PublishError(f"{method} {path}: the answer is not JSON") from None

    def pages(self, path: str) -> list[Any]:
        """Every item of a paginated list (page by page, never by a URL the answer gives)."""
        items: list[Any] = []
        for page in range(1, MAX_PAGES + 1):
            found = self.call("GET", path, params={"per_page": PER_PAGE, "page": page})
            if not isinstance(found, list):
                raise PublishError(f"GET {path}: expected a list")
            items += found
            if len(found) < PER_PAGE:
                break
        return items


def _why(response: httpx.Response) -> str:
    """The forge's own words: GitHub's message and errors, GitLab's message or error."""
    try:
        data = response.json()
    except json.JSONDecodeError:
        return printable(response.text[:300])
    if not isinstance(data, dict):
        return printable(str(data)[:300])
    parts = [str(data.get("message") or data.get("error") or "")]
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        parts.append("; ".join(str(e.get("message", e) if isinstance(e, dict) else e) for e in errors[:5]))
    return printable(": ".join(p for p in parts if p)[:600])
