"""The base of a pull or merge request, from each CI system's documented variables: the revisions
to try (the first one the repository has wins) and the variable they came from."""

from __future__ import annotations

import re
from collections.abc import Mapping

REVISION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./@{}~^-]{0,255}$")


def ci_base(env: Mapping[str, str]) -> tuple[list[str], str] | None:
    """([revision, ...], VARIABLE) for a CI pull-request job, or None outside one."""
    found: list[tuple[str, list[str]]] = [
        # GitLab gives the merge base itself, then the target branch's commit, then its name
        ("CI_MERGE_REQUEST_DIFF_BASE_SHA", [env.get("CI_MERGE_REQUEST_DIFF_BASE_SHA", "")]),
        ("CI_MERGE_REQUEST_TARGET_BRANCH_SHA", [env.get("CI_MERGE_REQUEST_TARGET_BRANCH_SHA", "")]),
        ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", _branch(env.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", ""))),
        # GitHub Actions sets GITHUB_BASE_REF on pull_request and pull_request_target events only
        ("GITHUB_BASE_REF", _branch(env.get("GITHUB_BASE_REF", ""))),
        ("BITBUCKET_PR_DESTINATION_BRANCH", _branch(env.get("BITBUCKET_PR_DESTINATION_BRANCH", ""))),
        ("SYSTEM_PULLREQUEST_TARGETBRANCH", _branch(env.get("SYSTEM_PULLREQUEST_TARGETBRANCH", ""))),
    ]
    for variable, revisions in found:
        usable = [r for r in revisions if r and REVISION.match(r)]
        if usable:
            return usable, variable
    return None


def _branch(name: str) -> list[str]:
    """A branch name as a CI gives it: the remote-tracking branch first (what a CI clone has)."""
    name = name.removeprefix("refs/heads/")
    return [f"origin/{name}", name] if name else []
