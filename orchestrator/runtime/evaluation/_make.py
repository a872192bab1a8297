"""`orchestrator eval make --from-commits REPO REV...`: instances from fix commits, as BugsInPy and
SWE-bench build theirs. A commit qualifies when it changes tests and code, and its test changes
(the test patch, applied to its parent) fail before its code changes (the gold patch) and pass
after them: those tests are FAIL_TO_PASS, the tests that pass before and after are PASS_TO_PASS.
Both runs are the spec's checks, in the sandbox, on a scratch clone of the parent: the repository
is only read. The commit message is the problem statement (edit it: it often names the fix)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from orchestrator.checks import apply_patch, header_paths
from orchestrator.errors import SpecError
from orchestrator.runtime.evaluation._git import checkout, commit_of, git, split_sections
from orchestrator.runtime.evaluation._judge import judged_checks, merged_tests, run_setup, verifier_at
from orchestrator.spec import load_spec
from orchestrator.spec.evalfile import Instance, swe_line
from orchestrator.spec.operator import Operator
from orchestrator.workflow import Workflow, prepare_workflow

DEFAULT_SPEC = """\
version: 1
name: eval-make
goal: which tests a fix commit turns from failing to passing
workspace: .
checks:
  tests: {run: "python -m pytest -q -p no:cacheprovider", timeout_s: 900}
"""


@dataclass
class Made:
    """What became of one revision: its instance, or why it does not qualify."""

    revision: str
    commit: str = ""
    instance: Instance | None = None
    reason: str = ""
    gold: str = ""
    created_at: str = ""


def judge_workflow(repo: Path, spec: Path | None, operator: Operator, scratch: Path) -> Workflow:
    """The spec whose checks decide (the eval's own, or `python -m pytest` by default)."""
    if spec is None:
        spec = scratch / "eval-make.yaml"
        spec.write_text(DEFAULT_SPEC, encoding="utf-8")
    return prepare_workflow(load_spec(spec), replace(operator, workspace=repo.resolve()))


async def make_instances(
    repo: Path,
    revisions: list[str],
    workflow: Workflow,
    work: Path,
    *,
    setup: str | None = None,
    timeout_s: float = 900,
) -> list[Made]:
    """Each revision examined in turn (a clone of its parent each)."""
    if not (repo / ".git").exists():
        raise SpecError(f"--from-commits: {repo} is not a git repository")
    judged = judged_checks(workflow, None)
    return [await _examine(repo, revision, workflow, judged, work, setup, timeout_s) for revision in revisions]


async def _examine(
    repo: Path, revision: str, workflow: Workflow, judged: list[str], work: Path, setup: str | None, timeout: float
) -> Made:
    made = Made(revision)
    try:
        made.commit = commit_of(repo, revision)
        parent = git(repo, "rev-parse", "--verify", "--quiet", f"{made.commit}^1^{{commit}}", check=False).strip()
    except SpecError as exc:
        made.reason = f"not a commit of {repo}: {exc}"
        return made
    if not parent:
        made.reason = "a root commit: there is no parent to start from"
        return made
    diff = git(repo, "diff", "--no-ext-diff", "--no-textconv", "--binary", parent, made.commit)
    folder = work / made.commit[:12]
    checkout(repo, parent, folder)
    first = verifier_at(workflow, folder)
    covers = first.protection.covers
    first.close()
    sections = split_sections(diff)
    tests = [s for s in sections if any(covers(p) for p in header_paths(s))]
    code = [s for s in sections if not any(covers(p) for p in header_paths(s))]
    if not tests or not code:
        made.reason = "the commit changes no test file" if not tests else "the commit changes only tests"
        return made
    test_patch, made.gold = "".join(tests), "".join(code)
    problem = await apply_patch(test_patch, folder)
    if problem:
        made.reason = f"its test changes do not apply to its parent: {problem}"
        return made
    if setup and (problem := await run_setup(workflow, folder, setup, timeout)):
        made.reason = problem
        return made
    # made after the setup: it finds the interpreter the setup made
    verifier = verifier_at(workflow, folder)
    try:
        befores = [await verifier.baseline(name) for name in judged]
        afters = [await verifier.run(name, made.gold, "gold") for name in judged]
    finally:
        verifier.close()
    for when, runs in (("before the fix", befores), ("with the fix", afters)):
        for run in runs:
            if run.unusable or run.tests is None:
                why = run.unusable or "it reports no per-test results"
                made.reason = f"{when}, the check {run.name} cannot judge: {why}"
                return made
    before, after = merged_tests(befores), merged_tests(afters)
    fail_to_pass = sorted(t for t, s in before.items() if s == "failed" and after.get(t) == "passed")
    pass_to_pass = sorted(t for t, s in before.items() if s == "passed" and after.get(t) == "passed")
    if not fail_to_pass:
        made.reason = "no test fails before the fix and passes after it"
        return made
    made.created_at = git(repo, "log", "-1", "--format=%cI", made.commit).strip()
    message = git(repo, "log", "-1", "--format=%B", made.commit).strip()
    made.instance = Instance(
        id=_slug(f"{repo.resolve().name}-{made.commit[:10]}"),
        repo=repo.resolve(),
        base=parent,
        goal=message or f"the change of {made.commit[:10]}",
        test_patch=test_patch,
        fail_to_pass=tuple(node_id(t, folder) for t in fail_to_pass),
        pass_to_pass=tuple(node_id(t, folder) for t in pass_to_pass),
    )
    made.reason = f"{len(fail_to_pass)} FAIL_TO_PASS, {len(pass_to_pass)} PASS_TO_PASS"
    return made


def node_id(test: str, root: Path) -> str:
    """A JUnit test id (`tests.test_x.TestY::test_z`) as pytest's node id (`tests/test_x.py::TestY::
    test_z`) when the file is there; unchanged otherwise."""
    classname, sep, name = test.rpartition("::")
    if not sep:
        return test
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):
        path = "/".join(parts[:cut]) + ".py"
        if (root / path).is_file():
            return "::".join([path, *parts[cut:], name])
    return test


def _slug(name: str) -> str:
    return (re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "instance")[:64]


def write_instances(made: list[Made], output: Path) -> int:
    """The qualifying instances as SWE-bench-style JSONL (the repository relative to the file)."""
    lines = []
    for one in made:
        if one.instance is None:
            continue
        repo = os.path.relpath(one.instance.repo, output.resolve().parent)
        lines.append(swe_line(one.instance, repo=repo, gold=one.gold, created_at=one.created_at or None))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)


def make_from_commits(
    repo: Path, revisions: list[str], operator: Operator, *, spec: Path | None = None, setup: str | None = None
) -> list[Made]:
    """`eval make`: the revisions examined in scratch clones, removed afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix="orchestrator-eval-make-"))
    try:
        workflow = judge_workflow(repo, spec, operator, scratch)
        return asyncio.run(make_instances(repo, revisions, workflow, scratch / "work", setup=setup))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
