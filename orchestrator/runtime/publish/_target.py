"""Where a review is published, from the operator's command line and the CI's own variables only
(never from a spec or the review file): the API (`GITHUB_API_URL`, `CI_API_V4_URL`), the
repository or project, the pull or merge request, the head commit the CI event names, and the
token (`GITHUB_TOKEN`, `GITLAB_TOKEN`)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from orchestrator.errors import SpecError, printable
from orchestrator.runtime.publish._http import Endpoint, endpoint

Forge = Literal["github", "gitlab"]
GITHUB_API = "https://api.github.com"
GITLAB_API = "https://gitlab.com/api/v4"
REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
PROJECT = re.compile(r"^(?:\d{1,20}|[A-Za-z0-9_.-]{1,255}(?:/[A-Za-z0-9_.-]{1,255}){1,20})$")
SHA = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")
MAX_EVENT_BYTES = 25_000_000


@dataclass(frozen=True)
class Target:
    forge: Forge
    point: Endpoint
    project: str  # owner/name on GitHub; the project's id or its URL-encoded path on GitLab
    number: int  # the pull request's number, the merge request's iid
    head_sha: str | None  # the head the CI event names (trusted); None when it names none
    token: str

    @property
    def label(self) -> str:
        return f"{self.project}#{self.number}" if self.forge == "github" else f"{self.project}!{self.number}"


def github_target(env: Mapping[str, str], pull: int | None, repo: str | None, head_sha: str | None) -> Target:
    event = _event(env)
    pr: dict[str, Any] = event["pull_request"] if isinstance(event.get("pull_request"), dict) else {}
    run: dict[str, Any] = event["workflow_run"] if isinstance(event.get("workflow_run"), dict) else {}
    listed = [p for p in run.get("pull_requests") or [] if isinstance(p, dict)]
    number = pull or _int(pr.get("number")) or (_int(listed[0].get("number")) if listed else None)
    head = head_sha or _dig(pr, "head", "sha") or run.get("head_sha")
    repository = repo or env.get("GITHUB_REPOSITORY", "")
    if not REPOSITORY.match(repository):
        raise SpecError(f"publish: no repository (OWNER/NAME): pass --repo or set GITHUB_REPOSITORY ({repository!r})")
    return Target(
        "github",
        endpoint(env.get("GITHUB_API_URL") or GITHUB_API, "GITHUB_API_URL"),
        repository,
        _number(number, "pull request", "the event names none: pass --pull NUMBER"),
        _sha(head),
        _token(env, "GITHUB_TOKEN"),
    )


def gitlab_target(env: Mapping[str, str], pull: int | None, repo: str | None, head_sha: str | None) -> Target:
    project = repo or env.get("CI_MERGE_REQUEST_PROJECT_ID") or env.get("CI_PROJECT_ID", "")
    if not PROJECT.match(project):
        raise SpecError(f"publish: no project: pass --repo GROUP/NAME or set CI_PROJECT_ID ({printable(project)!r})")
    number = pull or _int(env.get("CI_MERGE_REQUEST_IID"))
    return Target(
        "gitlab",
        endpoint(env.get("CI_API_V4_URL") or GITLAB_API, "CI_API_V4_URL"),
        quote(project, safe=""),
        _number(number, "merge request", "pass --pull IID or run in a merge-request pipeline"),
        _sha(head_sha),
        _token(env, "GITLAB_TOKEN"),
    )


def _event(env: Mapping[str, str]) -> dict[str, Any]:
    """The GitHub Actions event this job runs for (the runner writes it: the CI's own data)."""
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return {}
    try:
        file = Path(path)
        if file.stat().st_size > MAX_EVENT_BYTES:
            return {}
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _dig(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None  # type: ignore[assignment]
    return data


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.isdigit() and 0 < len(value) < 12:
        return int(value)
    return None


def _number(value: int | None, what: str, hint: str) -> int:
    if value is None or value <= 0:
        raise SpecError(f"publish: which {what}? {hint}")
    return value


def _sha(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not SHA.match(value):
        raise SpecError(f"publish: the head commit {printable(value)!r} is not a full commit SHA")
    return value


def _token(env: Mapping[str, str], variable: str) -> str:
    token = env.get(variable, "").strip()
    if not token:
        raise SpecError(f"publish: {variable} is not set", hint=f"give the publishing job the token in {variable}")
    if any(ord(c) < 33 or ord(c) > 126 for c in token):
        raise SpecError(f"publish: {variable} is not a token (it has spaces or control characters)")
    return token
