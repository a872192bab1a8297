"""Reviewing what a pull request changed, on a real git repository (tests/review_repo.py): the diff
scope (changed files, hunks, deleted, renamed and binary files, a diff past its bound, the CI's
base branch), the changes in the models' prompts, `in_diff` on each finding, and review.json /
gitlab-review.json as GitHub's create-a-review body and GitLab's discussions
(https://docs.github.com/en/rest/pulls/reviews#create-a-review-for-a-pull-request,
https://docs.gitlab.com/api/discussions/#create-a-new-thread-in-the-merge-request-diff): only
findings on lines of the diff become comments, only the verified fix becomes a suggestion."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from orchestrator import RunOptions, run_workflow
from orchestrator.checks import bubblewrap_problem, unified_diff
from orchestrator.diff import place_patch
from orchestrator.errors import SpecError
from orchestrator.outputs.review._documents import GithubReview, GitlabReview
from orchestrator.spec import load_spec
from orchestrator.testing import FakeProvider, in_order
from orchestrator.workflow import describe, prepare_workflow
from tests.process import orchestrator as cli
from tests.review_repo import (
    ADD_LINE,
    BUG_LINE,
    CALC_HEAD,
    RIGHT,
    RIGHT_FIX,
    WRONG,
    Repo,
    diagnosis_answer,
    findings_answer,
    git,
    make_repo,
    patches_answer,
)
from tests.servers.forge import diff_of

needs_git = pytest.mark.needs("" if shutil.which("git") else "git is not installed")
needs_bwrap = pytest.mark.needs(bubblewrap_problem())
pytestmark = needs_git
LOCAL_SPEC = "version: 1\nname: pr-review\ngoal: Review the pull request.\ninclude: ['**/*.py']\n"
REVIEW_FORMATS = ["json", "sarif", "markdown", "html", "github-review", "gitlab-review"]


def script(fake: FakeProvider) -> None:
    fake.script("reviewer", in_order(findings_answer()))
    fake.script("debugger", in_order(diagnosis_answer()))
    fake.script("refactorer", in_order(patches_answer()))
    fake.script("planner", lambda call: json.dumps({"summary": "one bug", "decisions": [], "disagreements": [],
                                                     "next_steps": []}))  # fmt: skip


def review_run(repo: Repo, out: Path, overrides: tuple[str, ...] = ("diff_base=main",)) -> dict[str, Any]:
    workflow = prepare_workflow(load_spec(repo.spec, list(overrides)))
    outcome = run_workflow(workflow, RunOptions(output_dir=out, checkpoint="memory", formats=REVIEW_FORMATS))
    return outcome.result.model_dump(mode="json")


def test_the_diff_scope_names_every_changed_file_and_what_became_of_it(fake: FakeProvider, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    workflow = prepare_workflow(load_spec(repo.spec, ["diff_base=main"]))
    plan = describe(workflow)["diff"]
    assert plan["base"] == "main" and plan["merge_base"] == repo.base and plan["head"] == repo.head
    files = {f["path"]: f for f in plan["files"]}
    assert files == {
        "calc.py": {"path": "calc.py", "status": "modified", "reviewed": True},
        "legacy.py": {"path": "legacy.py", "status": "deleted", "reviewed": False, "reason": "deleted"},
        "logo.png": {"path": "logo.png", "status": "added", "reviewed": False, "reason": "binary"},
        "notes/new_name.md": {
            "path": "notes/new_name.md",
            "status": "renamed",
            "reviewed": False,
            "reason": "renamed without a changed line",
        },
    }
    report = workflow.diff.report
    (calc,) = report.reviewed()
    # the lines a comment may go on are exactly those git's own diff shows (GitHub's view)
    shown = diff_of(repo.root, repo.base, repo.head)
    assert calc.right_lines() == {line for hunk in shown["calc.py"].hunks for line in hunk}
    assert calc.added() == {14, 15, 16, BUG_LINE} and ADD_LINE not in calc.right_lines()
    assert report.file("notes/new_name.md").old_path == "notes/old_name.md"
    # a fix of the added line may be a suggestion there; a change to an untouched line may not
    texts = {"calc.py": CALC_HEAD}
    assert [report.span_in_diff(span) for span in place_patch(RIGHT_FIX, texts)] == [True]
    elsewhere = unified_diff("calc.py", CALC_HEAD, CALC_HEAD.replace("return a + b", "return b + a"))
    assert [(s.line, report.span_in_diff(s)) for s in place_patch(elsewhere, texts)] == [(ADD_LINE, False)]
    # the run still sees every included file (its tools may read them), the subtasks get the changed one
    assert {f.path for f in workflow.files.files} >= {"calc.py", "tests/test_calc.py", "notes/new_name.md"}
    assert workflow.diff.paths == ["calc.py"]


@needs_bwrap
def test_a_review_comments_on_the_diff_and_suggests_only_the_verified_fix(fake: FakeProvider, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    script(fake)
    result = review_run(repo, tmp_path / "out")
    assert result["status"] == "quality_gate" and result["exit_code"] == 1
    # every role was given the changed hunks, numbered as the file is, and the changed file packed
    for model in ("reviewer", "debugger", "refactorer"):
        (call,) = fake.calls_to(model)
        assert (
            '<diff path="calc.py">' in call.task
            and f"{BUG_LINE:>5} +|     return sum(values) / len(values) - 1" in call.task
        )
        assert "legacy.py (deleted; not reviewed: deleted)" in call.task
        # the changed file is packed whole; an unchanged one is at most outlined in the repository map
        text = call.messages[0].text
        assert '<file path="calc.py">' in text and '<file path="tests/test_calc.py">' not in text
    # ...first, as the changed file of the diff under review (result.json says why it was packed)
    for subtask in result["subtasks"]:
        first = subtask["context"]["packed"][0]
        assert (first["path"], first["why"]) == ("calc.py", "changed in the diff under review"), subtask["id"]
    places = {(p["line"], p["in_diff"]) for p in result["diff"]["findings"]}
    assert places == {(BUG_LINE, True), (ADD_LINE, False)}
    verdicts = {v["id"]: v["verdict"] for s in result["subtasks"] for v in s["verification"]}
    assert verdicts == {"fix-1": "verified", "tidy-1": "unverified"}

    data = json.loads((tmp_path / "out" / "review.json").read_text())
    review = GithubReview.model_validate(data)  # exactly the request's fields: nothing else
    assert set(data) == {"commit_id", "body", "event", "comments"}
    assert review.commit_id == repo.head and review.event == "REQUEST_CHANGES"
    finding, suggestion = review.comments
    assert (finding.path, finding.line, finding.side) == ("calc.py", BUG_LINE, "RIGHT")
    assert "mean is off by one" in finding.body and "```suggestion" not in finding.body
    # model text is prose: no raw HTML, no mention, no forged marker
    assert "<img" not in finding.body and "@octocat" not in finding.body
    assert (suggestion.path, suggestion.line, suggestion.start_line) == ("calc.py", BUG_LINE, None)
    block = re.search(r"```suggestion\n(.*?)```", suggestion.body, re.S)
    assert block is not None and block[1] == RIGHT
    assert "**verified**" in suggestion.body and "`tests` fail → pass" in suggestion.body
    assert WRONG.strip() not in json.dumps(data)  # the unverified fix is never suggested...
    assert "`tidy-1`" in review.body and "unverified" in review.body  # ...it is described, with why
    assert f"`calc.py:{ADD_LINE}` add accepts anything" in review.body  # outside the diff: in the body
    assert all(c.line != ADD_LINE for c in review.comments)
    assert "`legacy.py` (deleted)" in review.body and "binary" in review.body and "renamed" in review.body

    lab = GitlabReview.model_validate_json((tmp_path / "out" / "gitlab-review.json").read_text())
    assert (lab.base_sha, lab.head_sha) == (repo.base, repo.head)
    positions = [d.position for d in lab.discussions]
    assert [(p.new_path, p.old_path, p.new_line, p.old_line) for p in positions] == [
        ("calc.py", "calc.py", BUG_LINE, None)
    ] * 2
    assert "```suggestion:-0+0\n" + RIGHT + "```" in lab.discussions[1].body

    sarif = json.loads((tmp_path / "out" / "findings.sarif").read_text())
    in_diff = {r["locations"][0]["physicalLocation"].get("region", {}).get("startLine"): r["properties"].get("inDiff")
               for r in sarif["runs"][0]["results"] if "severity" in r["properties"]}  # fmt: skip
    assert in_diff == {BUG_LINE: True, ADD_LINE: False}
    page = (tmp_path / "out" / "report.html").read_text()
    assert '<section id="review">' in page and "body: outside the diff" in page and "suggestion" in page
    assert "&lt;img src=x" in page and "<img src=x" not in page


PLANNED_SPEC = """
version: 1
name: planned-review
goal: Review the pull request.
include: ["**/*.py", "**/*.md"]
providers: {fake: {kind: fake}}
models: {planner: fake/planner, architecture_review: fake/reviewer}
fail_on: critical
"""


def test_the_planner_plans_over_the_changed_files_and_the_summary_shows_the_review(
    fake: FakeProvider, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo", PLANNED_SPEC)
    plan = {"subtasks": [{"id": "r", "role": "architecture_review", "instruction": "review", "files": []}]}
    summary = {"summary": "one bug", "decisions": [], "disagreements": [], "next_steps": []}
    fake.script("planner", in_order(json.dumps(plan), json.dumps(summary)))
    fake.script("reviewer", in_order(findings_answer()))
    workflow = prepare_workflow(load_spec(repo.spec, ["diff_base=main"]))
    outcome = run_workflow(workflow, RunOptions(output_dir=tmp_path / "out", checkpoint="memory", formats=["json"]))
    planning = fake.calls_to("planner")[0]
    # the planner chooses among the changed files and sees their hunks
    assert planning.schema["properties"]["subtasks"]["items"]["properties"]["files"]["items"]["enum"] == ["calc.py"]
    assert '<diff path="calc.py">' in planning.task and "- calc.py\n" in planning.task
    (reviewing,) = fake.calls_to("reviewer")
    assert (
        '<file path="calc.py">' in reviewing.messages[0].text and '<file path="tests/' not in reviewing.messages[0].text
    )
    from orchestrator.outputs.github import step_summary

    text = step_summary(outcome.result)
    assert "### Review (comment): 1 comment(s) on the diff" in text  # the gate passes (fail_on: critical)
    assert f"| high: mean is off by one | `calc.py:{BUG_LINE}` | comment |" in text
    assert f"| medium: add accepts anything | `calc.py:{ADD_LINE}` | body: outside the diff |" in text
    assert "`legacy.py` (deleted)" in text


def test_a_patch_is_placed_on_the_lines_it_changes() -> None:
    text = "a\nb\nc\nd\ne\n"
    new = "a\nB\nc\nd\ne\nf\n"
    spans = place_patch(unified_diff("x.py", text, new), {"x.py": text})
    assert [(s.start_line, s.line, s.replacement) for s in spans] == [(2, 2, ["B"]), (5, 5, ["e", "f"])]
    # a hunk whose header is off by some lines is found by its lines, as git apply finds it
    shifted = unified_diff("x.py", text, new).replace("@@ -1,", "@@ -3,", 1)
    assert [(s.start_line, s.line) for s in place_patch(shifted, {"x.py": text})] == [(2, 2), (5, 5)]
    removal = unified_diff("x.py", text, "a\nd\ne\n")
    assert [(s.start_line, s.line, s.replacement) for s in place_patch(removal, {"x.py": text})] == [(2, 3, [])]


def test_a_diff_past_max_diff_bytes_reviews_what_fits_and_says_so(fake: FakeProvider, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo.root / "zz_big.py").write_text("".join(f"value_{i} = {i}\n" for i in range(400)))
    git(repo.root, "add", "-A")
    git(repo.root, "commit", "-q", "-m", "a large file")
    workflow = prepare_workflow(load_spec(repo.spec, ["diff_base=main", "limits.max_diff_bytes=2048"]))
    report = workflow.diff.report
    assert report.truncated and report.diff_bytes == 2048
    files = {f.path: f for f in report.files}
    assert files["zz_big.py"].reviewed is False and "limits.max_diff_bytes (2048 bytes)" in files["zz_big.py"].reason
    assert files["calc.py"].reviewed  # git lists it before zz_big.py: it fits
    assert any("larger than limits.max_diff_bytes" in w for w in workflow.warnings)


def test_a_pull_request_job_reviews_against_the_ci_base_branch(
    fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "repo")
    monkeypatch.setenv("GITHUB_BASE_REF", "main")  # set by GitHub Actions on pull_request events
    workflow = prepare_workflow(load_spec(repo.spec))
    assert workflow.diff is not None and workflow.diff.report.source == "GITHUB_BASE_REF"
    assert workflow.diff.paths == ["calc.py"]
    monkeypatch.setenv("GITHUB_BASE_REF", "release")  # not in this clone: every file, and a warning
    workflow = prepare_workflow(load_spec(repo.spec))
    assert workflow.diff is None and any("GITHUB_BASE_REF names release" in w for w in workflow.warnings)
    monkeypatch.setenv("GITHUB_BASE_REF", "main")
    assert prepare_workflow(load_spec(repo.spec, ["diff_base=none"])).diff is None


def test_an_unknown_base_and_a_review_format_without_a_diff_are_usage_errors(
    fake: FakeProvider, tmp_path: Path
) -> None:
    with pytest.raises(SpecError, match="no revision 'nope'"):
        prepare_workflow(load_spec(make_repo(tmp_path / "fake").spec, ["diff_base=nope"]))
    # the command line, with the embedded model (nothing is called: these stop before any model)
    repo = make_repo(tmp_path / "repo", LOCAL_SPEC)
    done = cli("run", repo.spec, "--diff-base", "--help-me", "--output-dir", tmp_path / "o")
    assert done.returncode == 2 and "diff_base" in done.stderr  # never an option to git
    done = cli("run", repo.spec, "--format", "github-review", "--output-dir", tmp_path / "o")
    assert done.returncode == 2 and "github-review needs a diff to review" in done.stderr
    assert not (tmp_path / "o").exists()


def test_a_comment_is_known_by_the_marker_that_ends_it() -> None:
    from orchestrator.outputs.review import mark, marker_key

    # a suggestion block holds a model's code, which could carry a marker of its own: ours is last
    body = f"```suggestion\n{mark('finding:0123456789abcdef')}\n```\n\n{mark('suggestion:fedcba9876543210')}"
    assert marker_key(body) == "suggestion:fedcba9876543210"
    assert marker_key("<!-- sovereign-orchestrator:resolved -->") is None and marker_key("") is None
