"""The review files as they are read back: `orchestrator publish` takes review.json or
gitlab-review.json from an artifact that a pull request's job wrote, so they are hostile input,
validated here (unknown fields, other events, paths that climb, oversized bodies and lists are
refused) before anything is sent. An APPROVE event is never posted."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

Sha = Annotated[str, Field(pattern=r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")]


def _inside(path: str) -> str:
    """A path in the repository: relative, never climbing out of it."""
    if path.startswith("/") or ".." in path.split("/"):
        raise ValueError("a path in the repository must be relative and stay inside it")
    return path


RepoPath = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[^\x00-\x1f\x7f]+$"), AfterValidator(_inside)]
Body = Annotated[str, Field(min_length=1, max_length=65_536)]
MAX_ITEMS = 100


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GithubComment(_Strict):
    path: RepoPath
    line: int = Field(ge=1)
    side: Literal["RIGHT"] = "RIGHT"
    start_line: int | None = Field(default=None, ge=1)
    start_side: Literal["RIGHT"] | None = None
    body: Body

    @model_validator(mode="after")
    def _range(self) -> GithubComment:
        if self.start_line is not None and self.start_line >= self.line:
            raise ValueError("start_line must be before line")
        return self


class GithubReview(_Strict):
    """review.json: the body of GitHub's create-a-review request."""

    commit_id: Sha
    body: Body
    event: Literal["COMMENT", "REQUEST_CHANGES"]
    comments: list[GithubComment] = Field(default_factory=list, max_length=MAX_ITEMS)


class GitlabPosition(_Strict):
    position_type: Literal["text"] = "text"
    base_sha: Sha
    start_sha: Sha
    head_sha: Sha
    old_path: RepoPath
    new_path: RepoPath
    new_line: int = Field(ge=1)
    old_line: int | None = Field(default=None, ge=1)


class GitlabDiscussion(_Strict):
    body: Body
    position: GitlabPosition


class GitlabReview(_Strict):
    """gitlab-review.json: the merge request's overview note and its diff discussions."""

    base_sha: Sha
    start_sha: Sha
    head_sha: Sha
    body: Body
    discussions: list[GitlabDiscussion] = Field(default_factory=list, max_length=MAX_ITEMS)
