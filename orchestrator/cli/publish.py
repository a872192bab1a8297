"""`orchestrator publish`: post a stored review to its pull or merge request (the trusted job of
a two-job CI, docs/ci.md). It reads the review and the CI's variables, never a spec."""

from __future__ import annotations

import click

from orchestrator.cli._common import echo, log_options, setup_logging


@click.command()
@click.argument("source", metavar="RUN_ID|DIR|FILE")
@click.option("--to", "forge", type=click.Choice(["github", "gitlab"]), required=True, help="the forge to post to")
@click.option("--pull", type=click.IntRange(min=1), help="the pull request's number, the merge request's iid")
@click.option("--repo", help="OWNER/NAME on GitHub, the project's id or path on GitLab (default: the CI's)")
@click.option("--head-sha", help="the commit the CI event is for: the review must be of it (default: the event's)")
@click.option("--trusted", is_flag=True, help="this job is trusted: publish even though the CI event is a pull request")
@log_options
def publish(
    source: str,
    forge: str,
    pull: int | None,
    repo: str | None,
    head_sha: str | None,
    trusted: bool,
    log_format: str,
    verbose: int,
) -> None:
    """Post the review of RUN_ID (or review.json / gitlab-review.json in DIR, or FILE) with
    GITHUB_TOKEN to GITHUB_API_URL, or GITLAB_TOKEN to CI_API_V4_URL. A re-run updates the earlier
    comments instead of adding more. Refused in pull-request mode unless --trusted.

    Exit 0 posted (or nothing to post: a newer head), 2 no review, token or target, 3 the forge
    refused a request, 5 refused (pull-request mode, a review of another commit, plain http)."""
    from orchestrator.runtime.publish import publish as post

    setup_logging(log_format, verbose)
    done = post(source, forge, trusted=trusted, pull=pull, repo=repo, head_sha=head_sha)  # type: ignore[arg-type]
    for line in done.lines():
        echo(line)


COMMANDS = (publish,)
