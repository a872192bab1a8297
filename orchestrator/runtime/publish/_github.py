"""Publishing review.json on GitHub through its REST API (https://docs.github.com/en/rest):

- `GET /repos/{repo}/pulls/{n}` (pulls#get-a-pull-request): the head must be the review's commit;
- `GET /user`: who we are, so that only our own earlier comments are touched (a GitHub Actions
  token cannot ask: it is `github-actions[bot]`);
- first run: `POST /repos/{repo}/pulls/{n}/reviews` (pulls/reviews#create-a-review-for-a-pull-request),
  the file as its body, in one request (GitHub takes all of it or nothing: a 422 names the cause);
- a re-run finds its earlier review and comments by their hidden markers
  (`GET .../pulls/{n}/reviews`, `GET .../pulls/{n}/comments`: pulls/comments#list-review-comments-on-a-pull-request),
  updates a comment whose text changed (`PATCH .../pulls/comments/{id}`:
  pulls/comments#update-a-review-comment-for-a-pull-request), adds new ones
  (`POST .../pulls/{n}/comments`: pulls/comments#create-a-review-comment-for-a-pull-request),
  marks the ones it no longer makes resolved (their text; REST cannot resolve a thread), updates
  the review's body (`PUT .../reviews/{id}`: pulls/reviews#update-a-review-for-a-pull-request),
  and requests changes again, or dismisses its request (`PUT .../reviews/{id}/dismissals`), when
  the quality gate changed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.errors import PolicyError, PublishError
from orchestrator.outputs.review import REVIEW_KEY, marker_key
from orchestrator.outputs.review._documents import GithubComment, GithubReview
from orchestrator.runtime.publish._http import Api
from orchestrator.runtime.publish._outcome import RESOLVED, Published, resolved_body
from orchestrator.runtime.publish._target import Target

ACTIONS_BOT = "github-actions[bot]"
HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


def github_headers(token: str) -> dict[str, str]:
    return {**HEADERS, "Authorization": f"Bearer {token}"}


def publish_github(api: Api, target: Target, review: GithubReview, env: Mapping[str, str]) -> Published:
    done = Published("github", target.label)
    repo, number = target.project, target.number
    if target.head_sha is not None and target.head_sha != review.commit_id:
        raise PolicyError(
            f"the review is of commit {review.commit_id[:12]}, but the CI event is for {target.head_sha[:12]}: "
            "refused (an artifact of another pull request, or a forged one)"
        )
    pull = api.call("GET", f"/repos/{repo}/pulls/{number}")
    head = str(((pull or {}).get("head") or {}).get("sha") or "")
    if head != review.commit_id:
        done.skipped = f"the review is of {review.commit_id[:12]}, the pull request's head is now {head[:12]}"
        return done
    me = _login(api, env)
    if me is None:
        done.notes.append("this token's user is unknown: earlier comments were matched by their markers alone")
    ours = [r for r in api.pages(f"/repos/{repo}/pulls/{number}/reviews") if _ours(r, me, REVIEW_KEY)]
    earlier = {
        key: c
        for c in api.pages(f"/repos/{repo}/pulls/{number}/comments")
        if (key := marker_key(str(c.get("body") or ""))) not in (None, REVIEW_KEY) and _ours(c, me, key)
    }
    if not ours:
        created = api.call("POST", f"/repos/{repo}/pulls/{number}/reviews", review.model_dump(exclude_none=True))
        done.created = len(review.comments)
        done.url = str((created or {}).get("html_url") or "")
        return done
    _comments(api, done, review, earlier, repo, number)
    _review(api, done, review, ours[-1], repo, number)
    return done


def _comments(api: Api, done: Published, review: GithubReview, earlier: dict[str, Any], repo: str, number: int) -> None:
    wanted: dict[str, GithubComment] = {}
    for comment in review.comments:
        wanted.setdefault(marker_key(comment.body) or f"unmarked:{len(wanted)}", comment)
    for key, comment in wanted.items():
        old = earlier.get(key)
        if old is None:
            fields = comment.model_dump(exclude_none=True)
            api.call("POST", f"/repos/{repo}/pulls/{number}/comments", {**fields, "commit_id": review.commit_id})
            done.created += 1
        elif old.get("body") != comment.body:
            api.call("PATCH", f"/repos/{repo}/pulls/comments/{int(old['id'])}", {"body": comment.body})
            done.updated += 1
        else:
            done.unchanged += 1
    for key, old in earlier.items():
        body = str(old.get("body") or "")
        if key in wanted or RESOLVED in body:
            continue
        new = resolved_body(body, review.commit_id, key)
        api.call("PATCH", f"/repos/{repo}/pulls/comments/{int(old['id'])}", {"body": new})
        done.resolved += 1


def _review(api: Api, done: Published, review: GithubReview, last: dict[str, Any], repo: str, number: int) -> None:
    """The earlier review's body brought up to date, and its verdict changed when the gate did."""
    path = f"/repos/{repo}/pulls/{number}/reviews"
    if last.get("body") != review.body:
        api.call("PUT", f"{path}/{int(last['id'])}", {"body": review.body})
    state = last.get("state")
    if review.event == "REQUEST_CHANGES" and state != "CHANGES_REQUESTED":
        fresh = {"commit_id": review.commit_id, "body": review.body, "event": "REQUEST_CHANGES"}
        created = api.call("POST", path, fresh)
        done.url = str((created or {}).get("html_url") or "")
        done.notes.append("the quality gate fails now: changes requested")
    elif review.event == "COMMENT" and state == "CHANGES_REQUESTED":
        message = f"The quality gate passes at {review.commit_id[:12]}."
        try:
            api.call("PUT", f"{path}/{int(last['id'])}/dismissals", {"message": message, "event": "DISMISS"})
            done.notes.append("the quality gate passes now: the earlier request for changes was dismissed")
        except PublishError as exc:
            done.notes.append(f"the earlier request for changes could not be dismissed: {exc.message}")
    done.url = done.url or str(last.get("html_url") or "")


def _login(api: Api, env: Mapping[str, str]) -> str | None:
    """Our own login: only our earlier comments are updated or resolved. None: unknown (then a
    marker alone tells them, and the run says so)."""
    try:
        user = api.call("GET", "/user")
    except PublishError:
        return ACTIONS_BOT if env.get("GITHUB_ACTIONS") == "true" else None
    login = (user or {}).get("login")
    return str(login) if login else None


def _ours(item: dict[str, Any], me: str | None, key: str | None) -> bool:
    if marker_key(str(item.get("body") or "")) != key:
        return False
    return me is None or str((item.get("user") or {}).get("login") or "") == me
