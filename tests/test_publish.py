"""`orchestrator publish` against loopback GitHub and GitLab servers that check requests as the real
APIs do (tests/servers/forge.py; GitHub: https://docs.github.com/en/rest/pulls/reviews and
https://docs.github.com/en/rest/pulls/comments, GitLab: https://docs.gitlab.com/api/discussions/):
the review of a real pull-request branch (tests/review_repo.py) is posted as one review whose
comments are on the diff's lines, with one suggestion (the verified fix) and none for the
unverified one; a re-run updates the earlier comments instead of adding; what a review no longer
says is resolved. Publishing is refused in pull-request mode unless --trusted, and the token goes
to the CI's API host only."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator import RunOptions, run_workflow
from orchestrator.spec import load_spec
from orchestrator.testing import FakeProvider, forbid_real_models, in_order, registry
from orchestrator.workflow import prepare_workflow
from tests.process import run
from tests.review_repo import (
    ADD_LINE,
    BUG_LINE,
    RIGHT,
    SPEC,
    WRONG,
    Repo,
    diagnosis_answer,
    findings_answer,
    make_repo,
    patches_answer,
)
from tests.servers.forge import (
    LINE_NOT_IN_DIFF,
    START_NOT_IN_HUNK,
    UNKNOWN_COMMIT,
    GithubHandler,
    GithubState,
    GitlabHandler,
    GitlabState,
    diff_of,
)
from tests.servers.loopback import LoopbackServer

pytestmark = pytest.mark.needs("" if shutil.which("git") else "git is not installed")
# checks in the sandbox when bubblewrap is here (test_review.py requires it), so these run anywhere
PR_SPEC = SPEC.replace("sandbox: required", "sandbox: preferred")
TOKEN = "ghp_loopbacktoken0123456789"
CI_VARIABLES = re.compile(
    r"^(CI|GITHUB_.*|GITLAB_.*|CI_.*|BITBUCKET_.*|TF_BUILD|BUILD_REASON|SYSTEM_.*|.*_PROXY)$", re.I
)


@dataclass
class Reviewed:
    repo: Repo
    out: Path  # the review job's output folder: the artifact publish takes


def review(repo: Repo, out: Path, fake: FakeProvider, findings: str, checkpoint: str = "memory") -> str:
    """A review run of the repository's pull request (the review job); its run id."""
    fake.script("reviewer", in_order(findings))
    fake.script("debugger", in_order(diagnosis_answer()))
    fake.script("refactorer", in_order(patches_answer()))
    fake.script("planner", lambda call: json.dumps({"summary": "s", "decisions": [], "disagreements": [],
                                                     "next_steps": []}))  # fmt: skip
    workflow = prepare_workflow(load_spec(repo.spec, ["diff_base=main"]))
    formats = ["json", "github-review", "gitlab-review"]
    outcome = run_workflow(workflow, RunOptions(output_dir=out, checkpoint=checkpoint, formats=formats, cache=False))
    return outcome.run_id


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reviewed]:
    """One review run for the tests that only publish it."""
    root = tmp_path_factory.mktemp("pr")
    repo = make_repo(root / "repo", PR_SPEC)
    provider = FakeProvider()
    with pytest.MonkeyPatch.context() as patch, forbid_real_models():
        patch.setenv("ORCHESTRATOR_DATA_DIR", str(root / "data"))
        registry.register("fake", provider)
        try:
            review(repo, root / "out", provider, findings_answer())
        finally:
            registry.unregister("fake")
    yield Reviewed(repo, root / "out")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any CI's variables or proxies, plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if not CI_VARIABLES.match(k)}, **extra}


def publish(*args: str | Path, env: dict[str, str]) -> Any:
    import sys

    return run([sys.executable, "-m", "orchestrator", "publish", *map(str, args)], env=env, timeout=300)


def github(repo: Repo) -> LoopbackServer:
    state = GithubState(token=TOKEN, diff=diff_of(repo.root, repo.base, repo.head), head=repo.head, commits={repo.head})
    return LoopbackServer(GithubHandler, state)


def github_env(server: LoopbackServer, **extra: str) -> dict[str, str]:
    return {**clean_env(GITHUB_API_URL=server.url, GITHUB_REPOSITORY="acme/calc", GITHUB_TOKEN=TOKEN), **extra}


def posted(state: GithubState) -> list[tuple[int, str]]:
    """(line, kind) of every comment on the pull request."""
    return sorted((c["line"], "suggestion" if "```suggestion" in c["body"] else "finding") for c in state.comments)


def suggestion_text(body: str) -> str:
    found = re.search(r"```suggestion(?::-\d+\+\d+)?\n(.*?)```", body, re.S)
    assert found is not None, body
    return found[1]


def test_github_gets_one_review_on_the_diff_and_a_rerun_updates_it(
    reviewed: Reviewed, fake: FakeProvider, tmp_path: Path
) -> None:
    repo = reviewed.repo
    with github(repo) as server:
        state: GithubState = server.state
        first = publish(reviewed.out, "--to", "github", "--pull", "7", env=github_env(server))
        assert first.returncode == 0, first.stderr
        assert "2 created, 0 updated, 0 unchanged, 0 resolved" in first.stdout
        (made,) = state.reviews
        assert made["state"] == "CHANGES_REQUESTED" and made["commit_id"] == repo.head
        assert "<!-- sovereign-orchestrator:review -->" in made["body"] and "add accepts anything" in made["body"]
        # one comment on the changed line, none on the unchanged one; the verified fix as the only suggestion
        assert posted(state) == [(BUG_LINE, "finding"), (BUG_LINE, "suggestion")]
        assert all(c["line"] != ADD_LINE and c["side"] == "RIGHT" for c in state.comments)
        (suggested,) = [c for c in state.comments if "```suggestion" in c["body"]]
        assert suggestion_text(suggested["body"]) == RIGHT and "**verified**" in suggested["body"]
        assert not any(WRONG.strip() in c["body"] for c in state.comments)
        first_requests = [(r["method"], r["path"]) for r in state.requests]
        assert ("POST", "/repos/acme/calc/pulls/7/reviews") in first_requests
        assert all(r["headers"].get("Authorization") == f"Bearer {TOKEN}" for r in state.requests)
        # the second run says the same bug in other words: its comment is updated, nothing is added
        changed = findings_answer().replace("mean subtracts 1 from the average", "mean is one below the average")
        run_id = review(repo, tmp_path / "out2", fake, changed, checkpoint="default")
        state.requests.clear()
        second = publish(run_id, "--to", "github", "--pull", "7", env=github_env(server))
        assert second.returncode == 0, second.stderr
        assert "0 created, 1 updated, 1 unchanged, 0 resolved" in second.stdout
        assert len(state.reviews) == 1 and posted(state) == [(BUG_LINE, "finding"), (BUG_LINE, "suggestion")]
        assert any("one below the average" in c["body"] for c in state.comments)
        methods = sorted({(r["method"], r["path"]) for r in state.requests if r["method"] != "GET"})
        assert methods == [
            ("PATCH", f"/repos/acme/calc/pulls/comments/{state.comments[0]['id']}"),
            ("PUT", f"/repos/acme/calc/pulls/7/reviews/{made['id']}"),  # the body names the new run
        ]
    print(json.dumps({"first": first_requests, "second": methods}, indent=1))


def test_what_a_review_no_longer_says_is_resolved_and_its_request_for_changes_dismissed(
    reviewed: Reviewed, tmp_path: Path
) -> None:
    data = json.loads((reviewed.out / "review.json").read_text())
    with github(reviewed.repo) as server:
        state: GithubState = server.state
        assert publish(reviewed.out, "--to", "github", "--pull", "7", env=github_env(server)).returncode == 0
        # the bug fixed: only the suggestion would remain, the gate passes
        data["comments"] = [c for c in data["comments"] if "```suggestion" in c["body"]]
        data["event"] = "COMMENT"
        (tmp_path / "review.json").write_text(json.dumps(data))
        again = publish(tmp_path / "review.json", "--to", "github", "--pull", "7", env=github_env(server))
        assert again.returncode == 0, again.stderr
        assert "0 created, 0 updated, 1 unchanged, 1 resolved" in again.stdout and "dismissed" in again.stdout
        resolved = next(c for c in state.comments if "```suggestion" not in c["body"])
        assert resolved["body"].startswith("**Resolved**") and "~~**HIGH** · mean is off by one~~" in resolved["body"]
        assert state.reviews[0]["state"] == "DISMISSED" and len(state.comments) == 2
        # a third time: nothing left to do
        third = publish(tmp_path / "review.json", "--to", "github", "--pull", "7", env=github_env(server))
        assert "0 created, 0 updated, 1 unchanged, 0 resolved" in third.stdout


def test_the_loopback_github_refuses_what_github_refuses_and_publish_reports_it(
    reviewed: Reviewed, tmp_path: Path
) -> None:
    data = json.loads((reviewed.out / "review.json").read_text())
    with github(reviewed.repo) as server:
        state: GithubState = server.state
        api = f"{server.url}/repos/acme/calc/pulls/7"
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(api).status_code == 401  # the token is required
        assert httpx.get(api, headers={"Authorization": "Bearer wrong"}).json()["message"] == "Bad credentials"
        other = {**data, "commit_id": reviewed.repo.base}  # a commit that is not the pull request's
        answer = httpx.post(f"{api}/reviews", json=other, headers=good)
        assert (answer.status_code, answer.json()["errors"]) == (422, [UNKNOWN_COMMIT])
        ranged = {**data["comments"][0], "start_line": ADD_LINE}
        answer = httpx.post(f"{api}/reviews", json={**data, "comments": [ranged]}, headers=good)
        assert (answer.status_code, answer.json()["errors"]) == (422, [START_NOT_IN_HUNK])
        assert state.reviews == [] and state.comments == []
        # a review whose comment is on a line outside the diff: GitHub's 422, reported; nothing posted
        data["comments"][0]["line"] = ADD_LINE
        (tmp_path / "review.json").write_text(json.dumps(data))
        done = publish(tmp_path / "review.json", "--to", "github", "--pull", "7", env=github_env(server))
        assert done.returncode == 3 and LINE_NOT_IN_DIFF in done.stderr
        assert state.reviews == [] and state.comments == []
        # no token: exit 2 before any request
        state.requests.clear()
        env = github_env(server)
        del env["GITHUB_TOKEN"]
        done = publish(reviewed.out, "--to", "github", "--pull", "7", env=env)
        assert done.returncode == 2 and "GITHUB_TOKEN is not set" in done.stderr and state.requests == []


def test_publish_is_refused_in_pull_request_mode_unless_the_operator_trusts_the_job(reviewed: Reviewed) -> None:
    with github(reviewed.repo) as server:
        state: GithubState = server.state
        env = github_env(server, CI="true", GITHUB_ACTIONS="true", GITHUB_EVENT_NAME="pull_request")
        done = publish(reviewed.out, "--to", "github", "--pull", "7", env=env)
        assert done.returncode == 5 and "pull-request mode" in done.stderr and state.requests == []
        done = publish(reviewed.out, "--to", "github", "--pull", "7", "--trusted", env=env)
        assert done.returncode == 0, done.stderr
        assert len(state.reviews) == 1


def test_the_token_goes_only_to_the_api_host(reviewed: Reviewed, tmp_path: Path) -> None:
    with github(reviewed.repo) as server, github(reviewed.repo) as elsewhere:
        state: GithubState = server.state
        other: GithubState = elsewhere.state
        # proxies from the environment are not used for this machine's API
        proxies = {v: elsewhere.url for v in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy")}
        done = publish(reviewed.out, "--to", "github", "--pull", "7", env={**github_env(server), **proxies})
        assert done.returncode == 0, done.stderr
        assert other.requests == [] and state.requests
        # a redirect to another host is not followed
        state.redirect_to = elsewhere.url
        done = publish(reviewed.out, "--to", "github", "--pull", "7", env=github_env(server))
        assert done.returncode == 3 and "301" in done.stderr and other.requests == []
        state.redirect_to = ""
        # plain http to a host that is not this machine: refused before any request
        done = publish(
            reviewed.out,
            "--to",
            "github",
            "--pull",
            "7",
            env=github_env(server, GITHUB_API_URL="http://api.example.com"),
        )
        assert done.returncode == 5 and "in clear" in done.stderr
        # the event (trusted) names another head than the review's: a forged or foreign artifact
        state.requests.clear()
        event = tmp_path / "event.json"
        event.write_text(json.dumps({"workflow_run": {"head_sha": "1" * 40, "pull_requests": [{"number": 7}]}}))
        done = publish(
            reviewed.out, "--to", "github", "--trusted", env=github_env(server, GITHUB_EVENT_PATH=str(event))
        )
        assert done.returncode == 5 and "refused" in done.stderr and state.requests == []
        # a review file is hostile input: an approval, or a path that climbs out, is refused
        for field, value in (("event", "APPROVE"), ("comments", [{"path": "../x.py", "line": 1, "body": "b"}])):
            forged = {**json.loads((reviewed.out / "review.json").read_text()), field: value}
            (tmp_path / "forged.json").write_text(json.dumps(forged))
            done = publish(tmp_path / "forged.json", "--to", "github", "--pull", "7", env=github_env(server))
            assert done.returncode == 2 and "forged.json" in done.stderr and state.requests == []
    assert TOKEN not in done.stderr + done.stdout


def gitlab(repo: Repo) -> LoopbackServer:
    state = GitlabState(token=TOKEN, diff=diff_of(repo.root, repo.base, repo.head), head=repo.head, base_sha=repo.base,
                        start_sha=repo.base)  # fmt: skip
    return LoopbackServer(GitlabHandler, state)


def gitlab_env(server: LoopbackServer) -> dict[str, str]:
    return clean_env(CI_API_V4_URL=f"{server.url}/api/v4", CI_PROJECT_ID="42", CI_MERGE_REQUEST_IID="3",
                     GITLAB_TOKEN=TOKEN)  # fmt: skip


def test_gitlab_gets_diff_threads_and_a_rerun_updates_and_resolves(
    reviewed: Reviewed, fake: FakeProvider, tmp_path: Path
) -> None:
    repo = reviewed.repo
    with gitlab(repo) as server:
        state: GitlabState = server.state
        first = publish(reviewed.out, "--to", "gitlab", env=gitlab_env(server))
        assert first.returncode == 0, first.stderr
        assert "3 created, 0 updated, 0 unchanged, 0 resolved" in first.stdout
        notes = [d["notes"][0] for d in state.discussions]
        overview, finding, suggestion = notes
        assert overview["position"] is None and "sovereign-orchestrator:review" in overview["body"]
        assert [n["position"]["new_line"] for n in (finding, suggestion)] == [BUG_LINE, BUG_LINE]
        assert "old_line" not in finding["position"]  # an added line is named on the new side only
        assert suggestion_text(suggestion["body"]) == RIGHT and "suggestion:-0+0" in suggestion["body"]
        assert not any(WRONG.strip() in n["body"] for n in notes)
        assert all(r["headers"].get("PRIVATE-TOKEN") == TOKEN for r in state.requests)
        # a rerun: the bug is no longer found, so its thread is resolved; the rest stays
        only_medium = json.dumps({"findings": json.loads(findings_answer())["findings"][1:]})
        run_id = review(repo, tmp_path / "out2", fake, only_medium, checkpoint="default")
        second = publish(run_id, "--to", "gitlab", env=gitlab_env(server))
        assert second.returncode == 0, second.stderr
        assert "0 created, 1 updated, 1 unchanged, 1 resolved" in second.stdout
        assert len(state.discussions) == 3 and state.discussions[1]["notes"][0]["resolved"] is True
    # GitLab's own check: a thread on a line the diff does not show is a 400, reported
    data = json.loads((reviewed.out / "gitlab-review.json").read_text())
    data["discussions"][0]["position"]["new_line"] = ADD_LINE
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with gitlab(repo) as server:
        done = publish(tmp_path / "bad.json", "--to", "gitlab", env=gitlab_env(server))
        assert done.returncode == 3 and "must be a valid line code" in done.stderr
