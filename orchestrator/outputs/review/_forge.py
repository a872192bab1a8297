"""A review written for a forge: the body of GitHub's "create a review for a pull request" request
(https://docs.github.com/en/rest/pulls/reviews#create-a-review-for-a-pull-request: `commit_id`,
`body`, `event`, `comments` with `path`, `line`, `side`, and `start_line`/`start_side` for a
range), and GitLab merge-request discussions with a text `position`
(https://docs.gitlab.com/api/discussions/#create-a-new-thread-in-the-merge-request-diff: both
paths; `new_line` for an added line, and `old_line` too for an unchanged one). A suggestion is a
`suggestion` block on GitHub, `suggestion:-N+0` (N lines above the commented one) on GitLab."""

from __future__ import annotations

import re
from typing import Any, Literal

from orchestrator.outputs.review._plan import Comment, Review

Forge = Literal["github", "gitlab"]


def github_review(review: Review) -> dict[str, Any]:
    """review.json: exactly the body of the create-a-review request."""
    return {
        "commit_id": review.commit,
        "body": review.body,
        "event": review.event,
        "comments": [github_comment(c) for c in review.comments],
    }


def github_comment(comment: Comment) -> dict[str, Any]:
    found: dict[str, Any] = {"path": comment.path, "line": comment.line, "side": "RIGHT"}
    if comment.start_line is not None and comment.start_line < comment.line:
        found |= {"start_line": comment.start_line, "start_side": "RIGHT"}
    found["body"] = comment_body(comment, "github")
    return found


def gitlab_review(review: Review) -> dict[str, Any]:
    """gitlab-review.json: the merge request's overview note and one diff discussion per comment."""
    return {
        "base_sha": review.base_sha,
        "start_sha": review.start_sha,
        "head_sha": review.commit,
        "body": review.body,
        "discussions": [
            {"body": comment_body(c, "gitlab"), "position": gitlab_position(review, c)} for c in review.comments
        ],
    }


def gitlab_position(review: Review, comment: Comment) -> dict[str, Any]:
    position: dict[str, Any] = {
        "position_type": "text",
        "base_sha": review.base_sha,
        "start_sha": review.start_sha,
        "head_sha": review.commit,
        "old_path": comment.old_path,
        "new_path": comment.path,
        "new_line": comment.line,
    }
    if comment.old_line is not None:  # an unchanged line is named on both sides
        position["old_line"] = comment.old_line
    return position


def comment_body(comment: Comment, forge: Forge) -> str:
    if comment.replacement is None:
        return comment.text
    above = comment.line - (comment.start_line or comment.line)
    info = "suggestion" if forge == "github" else f"suggestion:-{above}+0"
    return f"{comment.text}\n\n{suggestion_block(comment.replacement, info)}\n\n{comment.footer}"


def suggestion_block(lines: list[str], info: str = "suggestion") -> str:
    """The replacement lines exactly (an empty block removes the lines), in a fence longer than any
    backtick run inside them."""
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n" + "".join(f"{line}\n" for line in lines) + fence
