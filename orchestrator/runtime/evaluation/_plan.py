"""Every arm x instance x repeat as one ordinary run: the spec with the instance's goal, the arm's
models and the instance's data class set on it, prepared on the instance's base clone under the
operator's policy. A run the policy refuses is a row before any call; what an earlier eval in the
same folder finished is reused (judged again when its judgement is missing), and what it left
interrupted is resumed from its checkpoint."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.errors import PolicyError, Problem, SpecError
from orchestrator.outputs.evaluation import EvalRun
from orchestrator.runtime import ledger
from orchestrator.runtime.evaluation._checkout import Checkout
from orchestrator.runtime.sweep import MAX_RUNS, SweepItem, SweepRow
from orchestrator.spec import load_spec
from orchestrator.spec.evalfile import ArmSpec, LoadedEval
from orchestrator.spec.operator import Operator
from orchestrator.workflow import prepare_workflow

_UNPRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
ROW = "eval-run.json"  # in a run's folder: the run judged
STARTED = "eval-started.json"  # in a run's folder: its run id and key, written when it starts
REUSABLE = ("resolved", "unresolved", "no_patch", "judge_only", "not_applied")


@dataclass
class Planned:
    label: str
    arm: str
    place: Checkout
    repeat: int
    key: str
    folder: Path  # the run's outputs
    row: EvalRun | None = None  # decided without running it (refused, reused)
    item: SweepItem | None = None  # to run (or resume)
    run_id: str | None = None
    result: Path | None = None  # a finished run's result.json, to judge without running it again
    swept: SweepRow | None = None  # what the sweep made of it

    @property
    def to_run(self) -> bool:
        return self.row is None and self.item is not None and self.result is None


def quoted(value: object) -> str:
    """A value as a YAML flow node that reads back as exactly itself: JSON, with the characters
    YAML does not keep raw (DEL, C1 controls, line separators, U+FEFF, U+FFFE, U+FFFF) escaped."""
    text = json.dumps(value, ensure_ascii=False)
    return _UNPRINTABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def overrides(place: Checkout, arm: ArmSpec) -> list[str]:
    """The `--set` assignments of one run: the goal, the arm's models, the instance's data class."""
    found = [f"goal={quoted(place.instance.goal)}"]
    found += [f"models.{role}={quoted(model)}" for role, model in sorted(arm.models.items())]
    if place.instance.data_class:
        found.append(f"policy.data_class={place.instance.data_class}")
    return [*found, *arm.set]


def run_key(loaded: LoadedEval, spec_digest: str, place: Checkout, arm: ArmSpec, repeat: int) -> str:
    data = {
        "eval": loaded.eval.name,
        "spec": spec_digest,
        "judge": loaded.eval.judge,
        "instance": place.instance.fingerprint(),
        "commit": place.commit,
        "arm": arm.model_dump(),
        "repeat": repeat,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def plan_runs(
    loaded: LoadedEval, places: list[Checkout], operator: Operator, output_dir: Path, *, reuse: bool
) -> list[Planned]:
    """Every run, prepared (or decided); SpecError (exit 2) when an arm does not fit the spec."""
    count = len(places) * len(loaded.eval.arms) * loaded.eval.repeats
    if count > MAX_RUNS:
        raise SpecError(f"an eval runs at most {MAX_RUNS} runs; its instances x arms x repeats make {count}")
    digest = hashlib.sha256(loaded.spec_path.read_bytes()).hexdigest()
    planned: list[Planned] = []
    problems: list[Problem] = []
    index = 0
    for name, arm in loaded.eval.arms.items():
        for place in places:
            for repeat in range(1, loaded.eval.repeats + 1):
                index += 1
                label = f"{name}/{place.instance.id}/r{repeat}"
                folder = output_dir / "runs" / name / place.instance.id / f"r{repeat}"
                one = Planned(label, name, place, repeat, run_key(loaded, digest, place, arm, repeat), folder)
                planned.append(one)
                if place.problem:
                    continue
                try:
                    workflow = prepare_workflow(
                        load_spec(loaded.spec_path, overrides(place, arm)),
                        replace(operator, workspace=place.base.resolve()),
                    )
                except PolicyError as refused:
                    one.row = decided(one, "refused", str(refused), exit_code=int(refused.exit_code))
                    continue
                except SpecError as wrong:
                    where = loaded.document.line_of(("arms", name))
                    for problem in wrong.problems:
                        message = f"arm {name} on {place.instance.id}: {problem.render()}"
                        problems.append(Problem(str(loaded.path), where, f"arms.{name}", message))
                    continue
                one.item = SweepItem(index, str(loaded.spec_path), place.base, label, workflow)
                if reuse:
                    _reuse(one)
    if problems:
        raise SpecError(problems[:20], hint="an arm's models and `set` must make a valid spec")
    return planned


def decided(one: Planned, outcome: str, reason: str, exit_code: int = 0) -> EvalRun:
    """The row of a run decided without running it (refused, invalid)."""
    return EvalRun(
        label=one.label,
        arm=one.arm,
        instance=one.place.instance.id,
        repeat=one.repeat,
        key=one.key,
        status=outcome,
        exit_code=exit_code,
        outcome=outcome,  # type: ignore[arg-type]
        reason=reason,
    )


def _reuse(one: Planned) -> None:
    """What an earlier eval left in the run's folder: its judged row, a finished run, an
    interrupted one."""
    stored = _read(one.folder / ROW)
    if stored is not None:
        try:
            row = EvalRun.model_validate(stored)
        except ValidationError:
            row = None
        if row is not None and row.key == one.key and row.outcome in REUSABLE:
            one.row, one.item = row, None
            return
    started = _read(one.folder / STARTED)
    if not isinstance(started, dict) or started.get("key") != one.key or not isinstance(started.get("run_id"), str):
        return
    run_id = started["run_id"]
    result = _read(one.folder / "result.json")
    if isinstance(result, dict) and result.get("run_id") == run_id and result.get("status") != "interrupted":
        one.run_id, one.result = run_id, one.folder / "result.json"
        return
    entry = ledger.get_run(run_id)
    if entry is not None and entry.status in ("interrupted", "running") and one.item is not None:
        one.run_id = run_id
        one.item.resume = True


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def mark_started(one: Planned, run_id: str) -> None:
    one.folder.mkdir(parents=True, exist_ok=True)
    (one.folder / STARTED).write_text(json.dumps({"run_id": run_id, "key": one.key}) + "\n", encoding="utf-8")


def store(one: Planned, row: EvalRun) -> None:
    one.folder.mkdir(parents=True, exist_ok=True)
    (one.folder / ROW).write_text(row.model_dump_json(indent=2) + "\n", encoding="utf-8")
