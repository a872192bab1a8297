"""Loopback GitHub and GitLab: the REST calls `orchestrator publish` makes, checked as the real
APIs check them, keeping what was posted.

GitHub (https://docs.github.com/en/rest/pulls/reviews, .../rest/pulls/comments): a token is
required (401 "Requires authentication", "Bad credentials"); a review or comment on a commit that is
not the pull request's is a 422 ("The commitOID is not part of the pull request"); a comment on a
line the pull request's diff does not show is a 422 ("Pull request review thread line must be part
of the diff ..."), on a path it does not touch too, and a range's start line must be in the same
hunk ("... start line must be part of the same hunk as the line."): the messages GitHub gives,
as its users report them (e.g. parkerbxyz/suggest-changes#28, villesau/ai-codereviewer#34,
reviewdog/reviewdog#434). A create-a-review request is all or nothing.

GitLab (https://docs.gitlab.com/api/discussions/): PRIVATE-TOKEN required (401); a diff thread's
position must name the merge request's diff version (its diff_refs), both paths, `new_line` on a
line the diff shows, and `old_line` exactly for an unchanged line (none for an added one): else a
400 "Note {:line_code=>["can't be blank", "must be a valid line code"]}", as gitlab4j-api#442 and
gitbeaker#3433 report it.

What the diff shows is computed here from `git diff` itself (hunk headers and lines), not by the
code under test."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.servers.loopback import QuietHandler

LINE_NOT_IN_DIFF = (
    "Pull request review thread line must be part of the diff and Pull request review thread diff hunk can't be blank"
)
PATH_INVALID = "Pull request review thread path is invalid and Pull request review thread diff hunk can't be blank"
START_NOT_IN_HUNK = "Pull request review thread start line must be part of the same hunk as the line."
UNKNOWN_COMMIT = "The commitOID is not part of the pull request"
BAD_POSITION = '400 Bad request - Note {:line_code=>["can\'t be blank", "must be a valid line code"]}'


@dataclass
class FileDiff:
    hunks: list[range] = field(default_factory=list)  # new-side lines of each hunk
    added: set[int] = field(default_factory=set)
    old_of: dict[int, int] = field(default_factory=dict)  # context line -> its old number
    old_path: str = ""


def diff_of(root: Path, base: str, head: str) -> dict[str, FileDiff]:
    """What `git diff base...head` shows (rename detection on, 3 lines of context: GitHub's view)."""
    text = subprocess.run(
        ["git", "diff", "-M", "-U3", "--no-color", f"{base}...{head}"], cwd=root, capture_output=True, text=True
    ).stdout
    files: dict[str, FileDiff] = {}
    current: FileDiff | None = None
    old_path = ""
    new = old = 0
    for line in text.splitlines():
        if line.startswith("--- "):
            old_path = line[6:] if line.startswith("--- a/") else ""
        elif line.startswith("+++ "):
            path = line[6:] if line.startswith("+++ b/") else ""
            current = files.setdefault(path, FileDiff(old_path=old_path or path)) if path else None
        elif match := re.match(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", line):
            old, new = int(match[1]), int(match[3])
            count = int(match[4]) if match[4] is not None else 1
            if current is not None:
                current.hunks.append(range(new, new + count))
        elif current is not None and line[:1] in (" ", "+", "-"):
            if line[0] == "+":
                current.added.add(new)
            elif line[0] == " ":
                current.old_of[new] = old
            old += line[0] != "+"
            new += line[0] != "-"
    return files


@dataclass
class Forge:
    """What a loopback forge holds, and every request it got."""

    token: str
    diff: dict[str, FileDiff]
    head: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    redirect_to: str = ""  # answer every request with a redirect to this URL (another host)
    next_id: int = 100
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


@dataclass
class GithubState(Forge):
    repo: str = "acme/calc"
    number: int = 7
    commits: set[str] = field(default_factory=set)
    login: str = "review-bot"
    reviews: list[dict[str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class GitlabState(Forge):
    project: str = "42"
    iid: int = 3
    base_sha: str = ""
    start_sha: str = ""
    user_id: int = 9
    discussions: list[dict[str, Any]] = field(default_factory=list)


class _Handler(QuietHandler):
    def _body(self) -> Any:
        size = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(size) if size else b""
        return json.loads(raw) if raw else None

    def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        state: Forge = self.server.state
        url = urlsplit(self.path)
        body = self._body() if method in ("POST", "PUT", "PATCH") else None
        with state.lock:
            state.requests.append(
                {"method": method, "path": url.path, "query": parse_qs(url.query), "headers": dict(self.headers),
                 "body": body}
            )  # fmt: skip
            if state.redirect_to:
                self._send(301, {"message": "Moved Permanently"}, {"Location": state.redirect_to + url.path})
                return
            status, payload = self.route(method, url.path, parse_qs(url.query), body)
        self._send(status, payload)

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        raise NotImplementedError

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")


def _page(items: list[dict[str, Any]], query: dict[str, list[str]]) -> list[dict[str, Any]]:
    per_page = min(int(query.get("per_page", ["30"])[0]), 100)
    page = int(query.get("page", ["1"])[0])
    return items[(page - 1) * per_page : page * per_page]


class GithubHandler(_Handler):
    """The pull request endpoints publish uses, and GET /user."""

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        state: GithubState = self.server.state
        auth = self.headers.get("Authorization", "")
        if not auth:
            return 401, {"message": "Requires authentication", "documentation_url": "https://docs.github.com/rest"}
        if auth not in (f"Bearer {state.token}", f"token {state.token}"):
            return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
        pr = f"/repos/{state.repo}/pulls/{state.number}"
        if method == "GET" and path == "/user":
            return 200, {"login": state.login, "id": 1}
        if method == "GET" and path == pr:
            return 200, {"number": state.number, "head": {"sha": state.head}, "state": "open"}
        if method == "GET" and path == f"{pr}/reviews":
            return 200, _page(state.reviews, query)
        if method == "GET" and path == f"{pr}/comments":
            return 200, _page(state.comments, query)
        if method == "POST" and path == f"{pr}/reviews":
            return self._review(state, body or {})
        if method == "POST" and path == f"{pr}/comments":
            problem = self._check(state, body or {}, str((body or {}).get("commit_id", "")))
            if problem:
                return 422, problem
            return 201, self._comment(state, body, None)
        if match := re.fullmatch(rf"/repos/{state.repo}/pulls/comments/(\d+)", path):
            found = next((c for c in state.comments if c["id"] == int(match[1])), None)
            if found is None:
                return 404, {"message": "Not Found"}
            if method == "PATCH":
                found["body"] = str((body or {})["body"])
                return 200, found
        if match := re.fullmatch(rf"{pr}/reviews/(\d+)(/dismissals)?", path):
            review = next((r for r in state.reviews if r["id"] == int(match[1])), None)
            if review is None:
                return 404, {"message": "Not Found"}
            if method == "PUT" and match[2]:
                review["state"] = "DISMISSED"
                return 200, review
            if method == "PUT":
                review["body"] = str((body or {})["body"])
                return 200, review
        return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}

    def _review(self, state: GithubState, body: dict[str, Any]) -> tuple[int, Any]:
        commit = str(body.get("commit_id") or state.head)
        if commit not in state.commits:
            return 422, {"message": "Unprocessable Entity", "errors": [UNKNOWN_COMMIT], "status": "422"}
        event = body.get("event")
        if event not in ("APPROVE", "REQUEST_CHANGES", "COMMENT"):
            return 422, {"message": "Unprocessable Entity", "errors": ["event is not valid"], "status": "422"}
        for comment in body.get("comments") or []:  # all or nothing
            problem = self._check(state, comment, commit)
            if problem:
                return 422, problem
        states = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}
        review = {
            "id": state.new_id(),
            "user": {"login": state.login},
            "body": body.get("body") or "",
            "state": states[event],
            "commit_id": commit,
            "html_url": f"https://github.example/{state.repo}/pull/{state.number}#review",
        }
        state.reviews.append(review)
        for comment in body.get("comments") or []:
            self._comment(state, {**comment, "commit_id": commit}, review["id"])
        return 200, review

    def _check(self, state: GithubState, comment: dict[str, Any], commit: str) -> dict[str, Any] | None:
        def error(message: str) -> dict[str, Any]:
            return {"message": "Unprocessable Entity", "errors": [message], "status": "422"}

        if commit not in state.commits:
            return error(UNKNOWN_COMMIT)
        diff = state.diff.get(str(comment.get("path")))
        if diff is None:
            return error(PATH_INVALID)
        line = comment.get("line")
        if comment.get("side", "RIGHT") != "RIGHT" or not any(line in hunk for hunk in diff.hunks):
            return error(LINE_NOT_IN_DIFF)
        start = comment.get("start_line")
        if start is not None and not any(line in hunk and start in hunk for hunk in diff.hunks):
            return error(START_NOT_IN_HUNK)
        return None

    def _comment(self, state: GithubState, body: dict[str, Any], review: int | None) -> dict[str, Any]:
        comment = {
            "id": state.new_id(),
            "pull_request_review_id": review or state.new_id(),
            "user": {"login": state.login},
            **{k: body.get(k) for k in ("body", "path", "line", "side", "start_line", "start_side", "commit_id")},
        }
        state.comments.append(comment)
        return comment


class GitlabHandler(_Handler):
    """The merge request endpoints publish uses (under /api/v4), and GET /user."""

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        state: GitlabState = self.server.state
        if self.headers.get("PRIVATE-TOKEN") != state.token:
            return 401, {"message": "401 Unauthorized"}
        mr = f"/api/v4/projects/{state.project}/merge_requests/{state.iid}"
        refs = {"base_sha": state.base_sha, "start_sha": state.start_sha, "head_sha": state.head}
        if method == "GET" and path == "/api/v4/user":
            return 200, {"id": state.user_id, "username": "review-bot"}
        if method == "GET" and path == mr:
            return 200, {"iid": state.iid, "sha": state.head, "diff_refs": refs}
        if method == "GET" and path == f"{mr}/discussions":
            return 200, _page(state.discussions, query)
        if method == "POST" and path == f"{mr}/discussions":
            return self._create(state, body or {}, refs)
        if match := re.fullmatch(rf"{mr}/discussions/([0-9a-f]+)(?:/notes/(\d+))?", path):
            thread = next((d for d in state.discussions if d["id"] == match[1]), None)
            if thread is None or method != "PUT":
                return 404, {"message": "404 Not found"}
            if match[2]:
                note = next((n for n in thread["notes"] if n["id"] == int(match[2])), None)
                if note is None:
                    return 404, {"message": "404 Note Not Found"}
                if "body" in (body or {}):
                    note["body"] = str(body["body"])
                return 200, note
            for note in thread["notes"]:
                note["resolved"] = bool((body or {}).get("resolved"))
            return 200, thread
        return 404, {"message": "404 Not Found"}

    def _create(self, state: GitlabState, body: dict[str, Any], refs: dict[str, str]) -> tuple[int, Any]:
        position = body.get("position")
        if position is not None and not self._valid(state, position, refs):
            return 400, {"message": BAD_POSITION}
        note = {
            "id": state.new_id(),
            "body": str(body.get("body") or ""),
            "author": {"id": state.user_id, "username": "review-bot"},
            "position": position,
            "resolvable": position is not None,
            "resolved": False,
        }
        thread = {"id": f"{state.new_id():040x}", "individual_note": False, "notes": [note]}
        state.discussions.append(thread)
        return 201, thread

    def _valid(self, state: GitlabState, position: dict[str, Any], refs: dict[str, str]) -> bool:
        if position.get("position_type") != "text" or any(position.get(k) != v for k, v in refs.items()):
            return False
        diff = state.diff.get(str(position.get("new_path")))
        if diff is None or position.get("old_path") != diff.old_path:
            return False
        line = position.get("new_line")
        if not any(line in hunk for hunk in diff.hunks):
            return False
        if line in diff.added:
            return "old_line" not in position
        return position.get("old_line") == diff.old_of.get(line)
