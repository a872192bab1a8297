"""A review of what a pull request changed, as data: which findings become comments on the diff,
which verified fixes become suggestions, and the review written for GitHub (review.json, the
body of its create-a-review request) or GitLab (gitlab-review.json, merge-request discussions).
`orchestrator publish` posts them; nothing here touches the network."""

from orchestrator.outputs.review._forge import comment_body, github_review, gitlab_review, suggestion_block
from orchestrator.outputs.review._plan import MAX_COMMENTS, Comment, Review, Row, build_review
from orchestrator.outputs.review._text import MARK, MARKER, REVIEW_KEY, mark, marker_key

__all__ = [
    "MARK",
    "MARKER",
    "MAX_COMMENTS",
    "REVIEW_KEY",
    "Comment",
    "Review",
    "Row",
    "build_review",
    "comment_body",
    "github_review",
    "gitlab_review",
    "mark",
    "marker_key",
    "suggestion_block",
]
