"""Eval files: tasks with a known answer, and the model assignments (arms) to compare on them.

    version: 1
    name: our-bugs
    spec: eval-spec.yaml          # the template every arm runs: graph, roles, checks, policy
    instances:                    # or a path to SWE-bench-style JSONL: instances: cases.jsonl
      - id: naturaldate-tz
        workspace: repos/humanize # a git repository (relative to this file)
        base: b172d67             # checked out in a scratch clone; the repository is not changed
        setup: "pip install -e ."  # optional, run in the sandbox
        goal: "naturaldate() crashes on a timezone-aware datetime"
        test_patch: cases/naturaldate/test.diff
        fail_to_pass: ["tests/test_time.py::test_naturaldate_tz_aware"]
        pass_to_pass: ["tests/test_time.py"]
    arms:
      qwen: {models: {debug: ollama/qwen3-coder:30b}}
      r1: {models: {debug: deepseek-r1}}
    repeats: 3

A JSONL file holds one SWE-bench instance a line (`instance_id`, `repo` (a local path, relative to
the JSONL file), `base_commit`, `problem_statement`, `test_patch`, `FAIL_TO_PASS`, `PASS_TO_PASS`,
the two lists as JSON lists or as the JSON strings SWE-bench's datasets hold). Every problem is
`file:line: field: message` (SpecError, exit 2). Nothing here runs git or reads a repository.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError

from orchestrator.errors import Problem, SpecError
from orchestrator.spec._agentic import TestName
from orchestrator.spec._document import (
    Document,
    Strict,
    load_yaml,
    problems_from,
    read_text_file,
    validate_document,
)
from orchestrator.spec._spec import DataClass

# an instance's or an arm's name: a folder name of the eval's outputs
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
# a git revision: never an option (a leading dash), never a path outside what git resolves
Revision = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9._/~^@{}-]{0,199}$")]
FilePath = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[^\x00]+$")]
Override = Annotated[str, Field(min_length=3, max_length=4000, pattern=r"^[A-Za-z_][\w.-]*=")]
ModelChain = Annotated[str, Field(min_length=1, max_length=300)] | Annotated[list[str], Field(min_length=1)]

MAX_INSTANCES = 1000
MAX_TESTS = 20_000
MAX_GOAL = 50_000
MAX_PATCH_BYTES = 4_000_000
MAX_JSONL_BYTES = 256_000_000


def _json_list(value: Any) -> Any:
    """SWE-bench's datasets hold the test lists as JSON text: `"[\\"tests/a.py::t\\"]"`."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


Tests = Annotated[list[TestName], BeforeValidator(_json_list), Field(max_length=MAX_TESTS)]


class InstanceSpec(Strict):
    """One task with a known answer: the repository at `base`, the goal, the tests that judge it."""

    id: Name
    workspace: FilePath = Field(description="a git repository, relative to the eval file")
    base: Revision = Field(description="the commit the model starts from (a scratch clone is made of it)")
    setup: str | None = Field(default=None, max_length=4000, description="run in the sandbox in each checkout")
    goal: str = Field(min_length=1, max_length=MAX_GOAL, description="the problem statement the models get")
    test_patch: FilePath = Field(description="a unified diff, relative to the eval file: the tests that judge")
    fail_to_pass: Tests = Field(min_length=1, description="tests that fail at base (with the test patch) and must pass")
    pass_to_pass: Tests = Field(default_factory=list, description="tests (or test files) that must still pass")
    data_class: DataClass | None = Field(default=None, description="the instance's data class (policy.data_class)")


class ArmSpec(Strict):
    """A model assignment to compare: role -> one model or a fallback chain, and other overrides."""

    models: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][\w-]{0,63}$")], ModelChain] = Field(min_length=1)
    set: list[Override] = Field(default_factory=list, max_length=50, description="more KEY=VALUE overrides")


class EvalSpec(Strict):
    version: Literal[1]
    name: Name
    spec: FilePath = Field(description="the spec every arm runs (relative to the eval file)")
    instances: list[InstanceSpec] | FilePath = Field(description="the instances, or a SWE-bench-style JSONL file")
    arms: dict[Name, ArmSpec] = Field(min_length=1, max_length=50)
    repeats: int = Field(default=1, ge=1, le=100)
    judge: list[str] | None = Field(
        default=None, description="the spec's checks that judge (default: verify.checks when set, else every check)"
    )
    setup_timeout_s: float = Field(default=900, gt=0, le=86400)


class SweInstance(Strict):
    """One line of SWE-bench-style JSONL, with a local repository."""

    instance_id: Name
    repo: FilePath
    base_commit: Revision
    problem_statement: str = Field(min_length=1, max_length=MAX_GOAL)
    test_patch: str = Field(min_length=1, max_length=MAX_PATCH_BYTES)
    FAIL_TO_PASS: Tests = Field(min_length=1)
    PASS_TO_PASS: Tests = Field(default_factory=list)
    # SWE-bench's other fields, read and not used (the gold patch is kept for `eval make`'s output)
    patch: str | None = Field(default=None, max_length=MAX_PATCH_BYTES)
    hints_text: str | None = None
    created_at: str | None = None
    version: str | None = None
    environment_setup_commit: str | None = None
    # ours
    setup: str | None = Field(default=None, max_length=4000)
    data_class: DataClass | None = None


@dataclass(frozen=True)
class Instance:
    """An instance ready to check out: paths resolved, the test patch read."""

    id: str
    repo: Path
    base: str
    goal: str
    test_patch: str
    fail_to_pass: tuple[str, ...]
    pass_to_pass: tuple[str, ...]
    setup: str | None = None
    data_class: str | None = None
    source: str = ""  # file:line, for messages

    def fingerprint(self) -> dict[str, Any]:
        """What decides this instance's runs and judgement (a run is reused only for the same)."""
        return {
            "id": self.id,
            "repo": str(self.repo),
            "base": self.base,
            "goal": self.goal,
            "test_patch": self.test_patch,
            "fail_to_pass": list(self.fail_to_pass),
            "pass_to_pass": list(self.pass_to_pass),
            "setup": self.setup,
            "data_class": self.data_class,
        }


@dataclass(frozen=True)
class LoadedEval:
    eval: EvalSpec
    path: Path
    spec_path: Path
    instances: tuple[Instance, ...]
    document: Document


def load_eval(path: Path) -> LoadedEval:
    """Read an eval file and its instances (a JSONL file it names too); SpecError (exit 2) lists
    every problem with its file and line."""
    document = load_yaml(path, kind="eval")
    spec = validate_document(document, EvalSpec)
    base = path.resolve().parent
    problems: list[Problem] = []
    spec_path = base / spec.spec
    if not spec_path.is_file():
        problems.append(document.problem(("spec",), f"spec file not found: {spec_path}"))
    if isinstance(spec.instances, str):
        instances = load_jsonl(base / spec.instances)
    else:
        instances = [_from_yaml(document, base, index, item, problems) for index, item in enumerate(spec.instances)]
    seen: dict[str, str] = {}
    for instance in instances:
        if instance.id in seen:
            problems.append(Problem(instance.source, None, "id", f"'{instance.id}' is also at {seen[instance.id]}"))
        seen.setdefault(instance.id, instance.source)
    if len(instances) > MAX_INSTANCES:
        problems.append(document.problem(("instances",), f"at most {MAX_INSTANCES} instances (got {len(instances)})"))
    if not instances:
        problems.append(document.problem(("instances",), "no instance"))
    if problems:
        raise SpecError(problems)
    return LoadedEval(spec, path, spec_path, tuple(instances), document)


def _from_yaml(document: Document, base: Path, index: int, item: InstanceSpec, problems: list[Problem]) -> Instance:
    loc: tuple[str | int, ...] = ("instances", index)
    patch = ""
    try:
        patch = read_text_file(base / item.test_patch, MAX_PATCH_BYTES, "test patch")
    except SpecError as exc:
        problems.append(document.problem((*loc, "test_patch"), exc.problems[0].message))
    line = document.line_of(loc)
    return Instance(
        id=item.id,
        repo=(base / item.workspace).resolve(),
        base=item.base,
        goal=item.goal,
        test_patch=patch,
        fail_to_pass=tuple(item.fail_to_pass),
        pass_to_pass=tuple(item.pass_to_pass),
        setup=item.setup,
        data_class=item.data_class,
        source=f"{document.path}:{line}" if line else str(document.path),
    )


def load_jsonl(path: Path) -> list[Instance]:
    """SWE-bench-style instances, one JSON object a line (blank lines skipped)."""
    text = read_text_file(path, MAX_JSONL_BYTES, "instances")
    found: list[Instance] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
        except ValueError as exc:
            problems.append(Problem(str(path), number, "", f"not JSON: {exc}"))
            continue
        try:
            item = SweInstance.model_validate(data)
        except ValidationError as exc:
            line_doc = Document(path=path, data=data, lines={(): number})
            problems += problems_from(exc, line_doc, SweInstance)
            continue
        found.append(
            Instance(
                id=item.instance_id,
                repo=(path.resolve().parent / item.repo).resolve(),
                base=item.base_commit,
                goal=item.problem_statement,
                test_patch=item.test_patch,
                fail_to_pass=tuple(item.FAIL_TO_PASS),
                pass_to_pass=tuple(item.PASS_TO_PASS),
                setup=item.setup,
                data_class=item.data_class,
                source=where,
            )
        )
        if len(found) > MAX_INSTANCES:
            problems.append(Problem(str(path), number, "", f"at most {MAX_INSTANCES} instances"))
            break
    if problems:
        raise SpecError(problems)
    return found


def swe_line(instance: Instance, *, repo: str, gold: str | None = None, created_at: str | None = None) -> str:
    """One JSONL line of an instance (what `eval make` writes), `repo` as it should be written."""
    record: dict[str, Any] = {
        "instance_id": instance.id,
        "repo": repo,
        "base_commit": instance.base,
        "problem_statement": instance.goal,
        "test_patch": instance.test_patch,
        "FAIL_TO_PASS": list(instance.fail_to_pass),
        "PASS_TO_PASS": list(instance.pass_to_pass),
    }
    if gold is not None:
        record["patch"] = gold
    if created_at is not None:
        record["created_at"] = created_at
    return json.dumps(record, ensure_ascii=False)
