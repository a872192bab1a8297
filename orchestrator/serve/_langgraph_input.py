"""What a LangGraph Server thread's run starts from, and the spec it becomes.

A run's input is a `ThreadInput`: the goal, and optionally a spec file, a workspace and models
for some roles. It is validated like a spec (unknown keys, wrong types and hostile values are
errors that name the field) and applied to the served spec exactly as `orchestrator run SPEC
--set FIELD=VALUE` applies overrides, so the spec is then checked and prepared by the same code
as a CLI run (`prepare_workflow`: confinement, the policy, the chains), before any model call.
A served graph without a spec of its own runs on a spec made of the input alone (every role on
the embedded model unless `models` says otherwise), rooted in the folder the server runs in.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import Problem, SpecError
from orchestrator.spec import Document, LoadedSpec, Spec, load_spec, validate_document
from orchestrator.spec._document import OVERRIDE
from orchestrator.spec._spec import ModelChain
from orchestrator.spec.operator import Operator
from orchestrator.workflow import Workflow, prepare_workflow

THREAD_INPUT = "thread input"  # where a problem with a run's input is said to be
PLACEHOLDER_GOAL = "(the goal of each run comes from its thread input)"
RoleName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")]  # no dot: it names one key
PathText = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[^\x00-\x1f\x7f]+$")]


class ThreadInput(BaseModel):
    """The input of a run of a served graph (LangGraph Studio shows it as the run's form)."""

    model_config = ConfigDict(extra="forbid", title="Sovereign Orchestrator run")

    goal: str | None = Field(
        default=None, min_length=1, max_length=20_000, description="what the run must do (default: the spec's goal)"
    )
    spec: PathText | None = Field(
        default=None,
        description="a spec file inside the folder the server runs in, instead of the graph's own spec",
    )
    workspace: PathText | None = Field(
        default=None, description="the folder the agents may read, relative to the spec (default: the spec's)"
    )
    models: dict[RoleName, ModelChain] | None = Field(
        default=None,
        max_length=64,
        description="role -> a model or a fallback chain, e.g. {'refactor': 'ollama/qwen3:8b'}",
    )


def parse_input(value: Any) -> ThreadInput:
    """The run's input, or SpecError with one problem per field (nothing has been read yet)."""
    if not isinstance(value, dict):
        got = "nothing" if value is None else type(value).__name__
        message = f"expected an object with goal, spec, workspace and models; got {got}"
        raise SpecError([Problem(THREAD_INPUT, None, "", message)], hint=_HINT)
    try:
        return ThreadInput.model_validate(value)
    except ValidationError as exc:
        problems = [
            Problem(THREAD_INPUT, None, ".".join(str(p) for p in error["loc"]), _message(error))
            for error in exc.errors(include_url=False)
        ]
        raise SpecError(problems, hint=_HINT) from None


_HINT = 'fix the run\'s input: {"goal": "...", "spec": "...", "workspace": "...", "models": {"ROLE": "MODEL"}}'


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field (expected goal, spec, workspace or models)"
    return str(error["msg"])


@dataclass(frozen=True)
class Served:
    """What a served graph runs: its spec (None: one made of each run's input) and the graph it
    pins (None: the spec's own). Relative paths are taken from the folder the server runs in."""

    spec: str | None = None
    graph: str | None = None

    @property
    def name(self) -> str:
        ref = self.graph or Path(self.spec or "spec").stem
        return re.sub(r"[^A-Za-z0-9_.\-]", "-", Path(ref.partition(":")[0]).stem).strip("-.") or "graph"


def prepare_run(served: Served, request: ThreadInput, root: Path, operator: Operator | None = None) -> Workflow:
    """The run's workflow: the spec loaded with the input applied, then prepared by
    `prepare_workflow` (SpecError: exit 2, PolicyError: exit 5; no model has been called)."""
    try:
        return prepare_workflow(load_request(served, request, root), operator)
    except SpecError as exc:  # the input's fields were applied as overrides: say where they came from
        problems = [_from_input(p) for p in exc.problems]
        hint = _HINT if all(p.file == THREAD_INPUT for p in problems) else exc.hint
        raise SpecError(problems, hint=hint) from None


def prepare_template(served: Served, root: Path) -> Workflow:
    """The workflow whose graph the server draws (Studio) before any run gives a goal."""
    if served.spec is not None:
        return prepare_workflow(load_spec(root / served.spec, _overrides(served, ThreadInput())))
    return prepare_workflow(_input_spec(served, ThreadInput(goal=PLACEHOLDER_GOAL), root, include=[]))


def load_request(served: Served, request: ThreadInput, root: Path) -> LoadedSpec:
    spec = _inside(root, request.spec) if request.spec else (root / served.spec if served.spec else None)
    if spec is not None:
        return load_spec(spec, _overrides(served, request))
    if request.goal is None:
        raise SpecError([Problem(THREAD_INPUT, None, "goal", "required: this graph has no spec with a goal")])
    return _input_spec(served, request, root)


def _inside(root: Path, spec: str) -> Path:
    path = (root / spec).resolve()
    if not path.is_relative_to(root.resolve()):
        raise SpecError([Problem(THREAD_INPUT, None, "spec", f"'{spec}' is outside the folder the server runs in")])
    if path.suffix not in (".yaml", ".yml"):
        raise SpecError([Problem(THREAD_INPUT, None, "spec", f"'{spec}' is not a spec file (.yaml or .yml)")])
    return path


def _overrides(served: Served, request: ThreadInput) -> list[str]:
    """The input as `--set` assignments; every value JSON-encoded, so it is read back as exactly
    that string or list (JSON is YAML), never as YAML syntax of its own."""
    fields: dict[str, Any] = {"graph": served.graph, "goal": request.goal, "workspace": request.workspace}
    fields |= {f"models.{role}": chain for role, chain in (request.models or {}).items()}
    return [f"{key}={json.dumps(value)}" for key, value in fields.items() if value is not None]


def _input_spec(served: Served, request: ThreadInput, root: Path, include: list[str] | None = None) -> LoadedSpec:
    """A spec made of the input alone, as if written in the server's folder."""
    data: dict[str, Any] = {"version": 1, "name": served.name, "goal": request.goal, "graph": served.graph}
    data |= {"workspace": request.workspace, "models": request.models, "include": include}
    data = {key: value for key, value in data.items() if value is not None}
    document = Document(path=root / THREAD_INPUT, data=data, origins={(key,): OVERRIDE for key in data})
    loaded = LoadedSpec(validate_document(document, Spec), document)
    if not loaded.workspace.is_dir():
        raise SpecError([loaded.problem(("workspace",), f"folder not found: {loaded.workspace}")])
    return loaded


def _from_input(problem: Problem) -> Problem:
    return dataclasses.replace(problem, file=THREAD_INPUT) if problem.file == OVERRIDE else problem
