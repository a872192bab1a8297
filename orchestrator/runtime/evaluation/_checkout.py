"""An instance's two scratch clones in the eval's folder: `base` (its base commit, where the runs
work) and `judge` (the same commit with the instance's test patch applied, where it is judged).
The user's repository is only read; every problem with a revision or a repository is found, with
its file and line, before anything runs."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from orchestrator.checks import apply_patch, rejection
from orchestrator.errors import Problem, SpecError
from orchestrator.runtime.evaluation._git import checkout, commit_of
from orchestrator.spec.evalfile import Instance

SETUP_DONE = "setup.json"  # beside the clones: the setup that succeeded in `base`, and at which commit


@dataclass
class Checkout:
    instance: Instance
    commit: str
    base: Path
    judge: Path
    problem: str = ""  # why the instance cannot be used: its test patch, its setup, its tests at the base

    @property
    def folder(self) -> Path:
        return self.base.parent

    def setup_done(self) -> bool:
        """Whether `base` holds this instance's setup already (an eval run again reuses it)."""
        try:
            done = json.loads((self.folder / SETUP_DONE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return bool(done == {"commit": self.commit, "setup": self.instance.setup})

    def mark_setup(self) -> None:
        record = {"commit": self.commit, "setup": self.instance.setup}
        (self.folder / SETUP_DONE).write_text(json.dumps(record) + "\n", encoding="utf-8")


def resolve_commits(instances: tuple[Instance, ...]) -> dict[str, str]:
    """Each instance's base commit, or SpecError (exit 2) naming every instance whose repository
    or revision is wrong."""
    found: dict[str, str] = {}
    problems = []
    for instance in instances:
        try:
            found[instance.id] = commit_of(instance.repo, instance.base)
        except SpecError as exc:
            message = exc.problems[0].message if exc.problems else str(exc)
            if "rev-parse" in message:
                message = f"no commit '{instance.base}' in {instance.repo}"
            problems.append(Problem(instance.source, None, f"{instance.id}.base", message))
    if problems:
        raise SpecError(problems, hint="an instance's workspace is a git repository and its base one of its commits")
    return found


def check_out(instance: Instance, commit: str, folder: Path) -> Checkout:
    """`base` (kept when it is still at the commit, with its setup) and `judge` (made afresh)."""
    base, judge = folder / "base", folder / "judge"
    checkout(instance.repo, commit, base)
    if judge.exists():
        shutil.rmtree(judge)
    checkout(instance.repo, commit, judge)
    return Checkout(instance, commit, base, judge)


async def apply_test_patch(place: Checkout) -> None:
    """The instance's test patch in `judge`; when it cannot be applied, the instance's problem."""
    reason, _ = await rejection(place.instance.test_patch, place.judge, place.judge)
    problem = reason or await apply_patch(place.instance.test_patch, place.judge)
    if problem:
        place.problem = f"the test patch does not apply at the base: {problem}"
