"""Publishing gitlab-review.json on GitLab through its REST API (https://docs.gitlab.com/api/):

- `GET /projects/{id}/merge_requests/{iid}` (merge_requests/#get-single-mr): its `diff_refs` head
  must be the review's, and its base and start commits are the ones the positions name (as the
  discussions API asks: the merge request's diff version);
- `GET /user`: who we are, so that only our own earlier threads are touched;
- `GET .../merge_requests/{iid}/discussions` (discussions/#list-project-merge-request-discussion-items):
  earlier threads found by their hidden markers;
- a new thread: `POST .../discussions` with `body` and a text `position`
  (discussions/#create-a-new-thread-in-the-merge-request-diff), the overview note without one;
- a thread whose text changed: `PUT .../discussions/{d}/notes/{note}` with `body`
  (discussions/#modify-an-existing-merge-request-thread-note), reopened when it was resolved;
- a thread this review no longer makes: `PUT .../discussions/{d}` with `resolved: true`
  (discussions/#resolve-a-merge-request-thread)."""

from __future__ import annotations

from typing import Any

from orchestrator.errors import PolicyError, PublishError
from orchestrator.outputs.review import REVIEW_KEY, marker_key
from orchestrator.outputs.review._documents import GitlabReview
from orchestrator.runtime.publish._http import Api
from orchestrator.runtime.publish._outcome import Published
from orchestrator.runtime.publish._target import Target


def gitlab_headers(token: str) -> dict[str, str]:
    return {"PRIVATE-TOKEN": token}


def publish_gitlab(api: Api, target: Target, review: GitlabReview) -> Published:
    done = Published("gitlab", target.label)
    path = f"/projects/{target.project}/merge_requests/{target.number}"
    if target.head_sha is not None and target.head_sha != review.head_sha:
        raise PolicyError(
            f"the review is of commit {review.head_sha[:12]}, but the job names {target.head_sha[:12]}: refused"
        )
    request = api.call("GET", path) or {}
    refs = request.get("diff_refs") or {}
    if refs.get("head_sha") != review.head_sha:
        head = str(refs.get("head_sha") or "")
        done.skipped = f"the review is of {review.head_sha[:12]}, the merge request's head is now {head[:12]}"
        return done
    me = _user_id(api)
    if me is None:
        done.notes.append("this token's user is unknown: earlier threads were matched by their markers alone")
    earlier: dict[str, dict[str, Any]] = {}
    for discussion in api.pages(f"{path}/discussions"):
        notes = discussion.get("notes") or []
        first = notes[0] if notes and isinstance(notes[0], dict) else {}
        key = marker_key(str(first.get("body") or ""))
        if key is not None and (me is None or (first.get("author") or {}).get("id") == me):
            earlier.setdefault(key, {"id": discussion.get("id"), "note": first})
    base = {k: refs.get(k) or getattr(review, k) for k in ("base_sha", "start_sha", "head_sha")}
    _note(api, done, path, earlier.get(REVIEW_KEY), {"body": review.body})
    wanted: set[str] = {REVIEW_KEY}
    for discussion in review.discussions:
        key = marker_key(discussion.body) or ""
        if key in wanted:
            continue
        wanted.add(key)
        position = {**discussion.position.model_dump(exclude_none=True), **base}
        _note(api, done, path, earlier.get(key), {"body": discussion.body, "position": position})
    for key, thread in earlier.items():
        if key in wanted or thread["note"].get("resolved"):
            continue
        api.call("PUT", f"{path}/discussions/{_id(thread['id'])}", {"resolved": True})
        done.resolved += 1
    return done


def _note(api: Api, done: Published, path: str, thread: dict[str, Any] | None, fields: dict[str, Any]) -> None:
    """A new thread, or the earlier one's note brought up to date (and reopened)."""
    if thread is None:
        api.call("POST", f"{path}/discussions", fields)
        done.created += 1
        return
    note, where = thread["note"], f"{path}/discussions/{_id(thread['id'])}"
    if note.get("body") == fields["body"] and not note.get("resolved"):
        done.unchanged += 1
        return
    if note.get("body") != fields["body"]:
        api.call("PUT", f"{where}/notes/{int(note['id'])}", {"body": fields["body"]})
    if note.get("resolved"):
        api.call("PUT", where, {"resolved": False})
    done.updated += 1


def _user_id(api: Api) -> int | None:
    try:
        user = api.call("GET", "/user")
    except PublishError:
        return None
    found = (user or {}).get("id")
    return found if isinstance(found, int) else None


def _id(value: Any) -> str:
    """A discussion id as GitLab gives it (hex): nothing else goes into a path."""
    text = str(value or "")
    if not text.isalnum() or len(text) > 64:
        raise PublishError(f"GitLab gave a discussion id that is not one: {text[:70]!r}")
    return text
