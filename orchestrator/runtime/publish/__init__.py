"""`orchestrator publish`: post a stored review to the pull or merge request it was made for.

Publishing is the trusted step of a two-job CI (docs/ci.md): it holds a write token, so it
refuses to run in pull-request mode unless the operator says `--trusted`; it reads only the
stored review (a run of this machine, or the review file of an artifact, validated as hostile
input) and the CI's own variables, never a spec; the token goes only to the CI's API host. A
re-run updates the comments of the earlier one (hidden markers) instead of adding more."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from orchestrator.errors import PolicyError, SpecError
from orchestrator.outputs import REVIEW_FILES
from orchestrator.outputs.review import build_review, github_review, gitlab_review
from orchestrator.outputs.review._documents import GithubReview, GitlabReview
from orchestrator.runtime.publish._github import github_headers, publish_github
from orchestrator.runtime.publish._gitlab import gitlab_headers, publish_gitlab
from orchestrator.runtime.publish._http import Api
from orchestrator.runtime.publish._outcome import Published
from orchestrator.runtime.publish._target import Forge, github_target, gitlab_target
from orchestrator.spec.operator import pull_request_event

FILES: dict[Forge, str] = {"github": REVIEW_FILES["github-review"], "gitlab": REVIEW_FILES["gitlab-review"]}
MAX_REVIEW_BYTES = 8_000_000

__all__ = ["FILES", "Published", "load_review", "publish"]


def publish(
    source: str,
    forge: Forge,
    *,
    trusted: bool = False,
    pull: int | None = None,
    repo: str | None = None,
    head_sha: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Published:
    """Post the review of `source` (a run id, or a folder or file holding the review file)."""
    env = os.environ if env is None else env
    why = pull_request_event(env)
    if why and not trusted:
        raise PolicyError(
            f"publish holds a write token and this job looks like pull-request mode ({why}): refused",
            hint="publish from a separate trusted job (GitHub: a workflow_run workflow), and pass --trusted there",
        )
    review = load_review(source, forge)
    if forge == "github":
        target = github_target(env, pull, repo, head_sha)
        api = Api(target.point, github_headers(target.token))
    else:
        target = gitlab_target(env, pull, repo, head_sha)
        api = Api(target.point, gitlab_headers(target.token))
    try:
        if isinstance(review, GithubReview):
            done = publish_github(api, target, review, env)
        else:
            done = publish_gitlab(api, target, review)
    finally:
        api.close()
    done.requests = list(api.sent)
    return done


def load_review(source: str, forge: Forge) -> GithubReview | GitlabReview:
    """The review to post: from a review file (or a folder holding one), else from the stored
    result of the run `source` names. Raises SpecError (exit 2) for anything that is not one."""
    model: type[GithubReview] | type[GitlabReview] = GithubReview if forge == "github" else GitlabReview
    path = Path(source)
    if path.is_dir():
        path = path / FILES[forge]
        if not path.is_file():
            raise SpecError(f"publish: {path} not found (the review job writes it with --format {forge}-review)")
    if path.is_file():
        if path.stat().st_size > MAX_REVIEW_BYTES:
            raise SpecError(f"publish: {path} is larger than {MAX_REVIEW_BYTES} bytes")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise SpecError(f"{path}: not JSON: {exc}") from None
        return _valid(model, data, str(path))
    from orchestrator.runtime._report import load_result

    result, _ = load_result(source)
    review = build_review(result)
    data = github_review(review) if forge == "github" else gitlab_review(review)
    return _valid(model, data, f"run {source}")


def _valid(model: type[GithubReview] | type[GitlabReview], data: object, where: str) -> GithubReview | GitlabReview:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{where}: {'.'.join(str(p) for p in error['loc']) or '(top)'}: {error['msg']}"
            for error in exc.errors()[:10]
        ]
        raise SpecError("\n".join(problems), hint="publish takes only the review file a review job wrote") from None
