"""A hostile pull request, round 3: each attack reproduced, then shown closed.

Every CI event that runs a pull request's code turns pull-request mode on (a Python graph is not
imported); a confidential file the selection left out, its name, size and line count never reach a
non-local model (a loopback model server behind a recording proxy plays the remote host); forged
tool-result fences stay data; a full disk (a real tmpfs) is a clear error with exit 3; an edited
result.json is refused by `apply`; traces carry no tool output; a spec's stdio MCP server runs in
the sandbox in pull-request mode.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.process import orchestrator

GITHUB = {"CI": "true", "GITHUB_ACTIONS": "true"}
GITLAB = {"CI": "true", "GITLAB_CI": "true"}
BITBUCKET = {"CI": "true", "BITBUCKET_BUILD_NUMBER": "41"}
AZURE = {"TF_BUILD": "True"}

# ---------------------------------------------------------------- every event that runs PR code

PR_EVENTS = [
    *(
        {**GITHUB, "GITHUB_EVENT_NAME": event}
        for event in (
            "pull_request",
            "pull_request_target",
            "pull_request_review",
            "pull_request_review_comment",
            "issue_comment",
            "workflow_run",
            "merge_group",
            "check_run",
            "check_suite",
            "status",
            "deployment",
            "repository_dispatch",
            "an_event_of_next_year",
        )
    ),
    {**GITHUB, "GITHUB_EVENT_NAME": "push", "GITHUB_HEAD_REF": "feature"},
    {**GITLAB, "CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "7"},
    {**GITLAB, "CI_PIPELINE_SOURCE": "external_pull_request_event", "CI_EXTERNAL_PULL_REQUEST_IID": "3"},
    {**GITLAB, "CI_PIPELINE_SOURCE": "push", "CI_OPEN_MERGE_REQUESTS": "group/project!7"},
    {**GITLAB, "CI_PIPELINE_SOURCE": "parent_pipeline"},
    {**GITLAB, "CI_PIPELINE_SOURCE": "pipeline"},
    {**BITBUCKET, "BITBUCKET_PR_ID": "3"},
    {**BITBUCKET, "BITBUCKET_PR_DESTINATION_BRANCH": "main"},
    {**AZURE, "BUILD_REASON": "PullRequest", "SYSTEM_PULLREQUEST_PULLREQUESTID": "9"},
    {**AZURE, "BUILD_REASON": "Manual", "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER": "9"},
    {**AZURE, "BUILD_REASON": "BuildCompletion"},
    {**AZURE, "BUILD_REASON": "ResourceTrigger"},
    {**AZURE, "BUILD_REASON": "ValidateShelveset"},
]
TRUSTED_EVENTS = [
    {**GITHUB, "GITHUB_EVENT_NAME": "push"},
    {**GITHUB, "GITHUB_EVENT_NAME": "schedule"},
    {**GITHUB, "GITHUB_EVENT_NAME": "workflow_dispatch"},
    {**GITHUB, "GITHUB_EVENT_NAME": "release"},
    {**GITLAB, "CI_PIPELINE_SOURCE": "push"},
    {**GITLAB, "CI_PIPELINE_SOURCE": "schedule"},
    {**GITLAB, "CI_PIPELINE_SOURCE": "web"},
    {**BITBUCKET, "BITBUCKET_BRANCH": "main"},
    {**AZURE, "BUILD_REASON": "IndividualCI"},
    {**AZURE, "BUILD_REASON": "Schedule"},
    {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request"},  # not in CI: a developer's shell
]


def _label(env: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in env.items() if k not in ("CI", "TF_BUILD", "GITHUB_ACTIONS", "GITLAB_CI"))


@pytest.mark.parametrize("env", PR_EVENTS, ids=_label)
def test_every_ci_event_that_runs_pull_request_code_is_pull_request_mode(env: dict[str, str]) -> None:
    from orchestrator.spec.operator import load_operator, pull_request_event

    assert pull_request_event(env), env
    assert load_operator(env=env).untrusted
    assert not load_operator(untrusted=False, env=env).untrusted  # --trusted still turns it off


@pytest.mark.parametrize("env", TRUSTED_EVENTS, ids=_label)
def test_events_that_run_only_the_repositorys_own_code_stay_trusted(env: dict[str, str]) -> None:
    from orchestrator.spec.operator import pull_request_event

    assert pull_request_event(env) == ""


GRAPH_MODULE = """
import os, pathlib
pathlib.Path(os.environ["MARKER"]).write_text("imported")


def build(kit):
    graph = kit.state_graph()
    graph.add_node("review", kit.role_node("review", role="architecture_review"))
    graph.add_edge(kit.START, "review")
    graph.add_edge("review", kit.END)
    return graph
"""

# what the real CI systems set (beside CI) on the events the last round let through as trusted
REAL_PR_ENVIRONMENTS = {
    "github-workflow_run": {**GITHUB, "GITHUB_EVENT_NAME": "workflow_run", "GITHUB_REF": "refs/heads/main"},
    "github-issue_comment": {**GITHUB, "GITHUB_EVENT_NAME": "issue_comment", "GITHUB_REF": "refs/heads/main"},
    "github-pull_request_review": {
        **GITHUB,
        "GITHUB_EVENT_NAME": "pull_request_review",
        "GITHUB_REF": "refs/pull/7/merge",
    },
    "github-pull_request_review_comment": {
        **GITHUB,
        "GITHUB_EVENT_NAME": "pull_request_review_comment",
        "GITHUB_REF": "refs/pull/7/merge",
    },
    "gitlab-external_pull_request": {
        **GITLAB,
        "CI_PIPELINE_SOURCE": "external_pull_request_event",
        "CI_EXTERNAL_PULL_REQUEST_IID": "12",
        "CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_NAME": "feature",
    },
    "gitlab-branch_with_open_mr": {**GITLAB, "CI_PIPELINE_SOURCE": "push", "CI_OPEN_MERGE_REQUESTS": "g/p!4"},
    "bitbucket-pull_request": {**BITBUCKET, "BITBUCKET_PR_ID": "5", "BITBUCKET_PR_DESTINATION_BRANCH": "main"},
    "azure-build_completion": {**AZURE, "BUILD_REASON": "BuildCompletion"},
}


def _repo_with_python_graph(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "ws").mkdir(parents=True)
    (root / "ws" / "app.py").write_text("x = 1\n")
    (root / "evil.py").write_text(GRAPH_MODULE)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    spec = root / "spec.yaml"
    spec.write_text('version: 1\nname: code\ngoal: g\nworkspace: ws\ngraph: "evil:build"\n')
    return spec


@pytest.mark.parametrize("ci", sorted(REAL_PR_ENVIRONMENTS))
def test_a_pull_requests_python_graph_is_not_imported_on_any_event_that_runs_its_code(ci: str, tmp_path: Path) -> None:
    spec = _repo_with_python_graph(tmp_path)
    marker = tmp_path / "imported"
    done = orchestrator("validate", spec, env={**REAL_PR_ENVIRONMENTS[ci], "MARKER": str(marker)})
    assert done.returncode == 5, done.stderr
    assert "refuses the Python graph 'evil:build'" in done.stderr and "pull-request mode (" in done.stderr
    assert not marker.exists()  # the pull request's module was never imported


def test_the_same_python_graph_is_the_users_own_on_a_push(tmp_path: Path) -> None:
    spec = _repo_with_python_graph(tmp_path)
    marker = tmp_path / "imported"
    env = {**GITHUB, "GITHUB_EVENT_NAME": "push", "MARKER": str(marker)}
    done = orchestrator("validate", spec, env=env)
    assert done.returncode == 0, done.stderr
    assert marker.exists()
