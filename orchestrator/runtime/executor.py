"""Where role nodes' work runs: `local` (this process, the default) or `ray` (a Ray cluster).

The LangGraph run stays in this process whatever the executor: checkpoints, the budget, the egress
report and the outputs are this process's. Only the work of a fanned-out role node (its model
calls, its tool loop, the checks of its patches) goes to a node of the cluster, chosen by the
operator's placement rules: policy facts (the data class a subtask sees, the countries of its
models) mapped to node labels, matched as Ray label selectors. The executor is the operator's
choice (`--executor`, or `executor:` in their policy file), never a spec's.

    placement:
      confidential: {zone: onprem}          # a subtask that sees a confidential file
      countries: {FR: {region: eu-west}}    # a subtask whose chain has a French model
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from orchestrator.catalog import Route, load_catalog
from orchestrator.errors import PolicyError, SpecError
from orchestrator.policy import CLASSES
from orchestrator.spec.operator import PlacementSpec
from orchestrator.workflow import Workflow

KINDS = ("local", "ray")


@dataclass(frozen=True)
class ExecutorChoice:
    kind: str  # local | ray
    address: str | None = None  # ray: the cluster's address
    source: str = "default"  # --executor, or the operator policy


def choose_executor(option: str | None, workflow: Workflow) -> ExecutorChoice:
    """`--executor local|ray|ray:ADDRESS`, else the operator policy's `executor`, else local; a
    Ray cluster's address defaults to $RAY_ADDRESS, as Ray's own tools take it."""
    policy = workflow.operator.policy.executor
    if option:
        kind, _, address = option.partition(":")
        if kind not in KINDS:
            raise SpecError(f"--executor: unknown executor '{kind}' (local, ray or ray:ADDRESS)")
        choice = ExecutorChoice(kind, address or None, "--executor")
    elif policy is not None:
        choice = ExecutorChoice(policy.kind, policy.address, workflow.operator.rule_source("executor"))
    else:
        return ExecutorChoice("local")
    if choice.kind == "ray" and not (choice.address or os.environ.get("RAY_ADDRESS")):
        raise SpecError(
            f"executor ray ({choice.source}): no cluster address",
            hint="set RAY_ADDRESS, or give --executor ray:HOST:PORT (or executor.address in your policy)",
        )
    return choice


def start_executor(workflow: Workflow, option: str | None, recording: bool) -> Any:
    """The executor of a run, connected and checked (None: this process). PolicyError when a
    placement rule leaves work no node can run, before any model call."""
    choice = choose_executor(option, workflow)
    if choice.kind == "local":
        return None
    if recording:
        raise SpecError(f"executor ray ({choice.source}): --record and --replay run on the local executor")
    from orchestrator.runtime._ray import RayExecutor

    executor = RayExecutor(workflow, choice.address, choice.source)
    executor.start()
    return executor


def placement_rules(
    placement: PlacementSpec | None, data_class: str, countries: Iterable[str]
) -> list[tuple[str, dict[str, str]]]:
    """The rules that hold for a subtask, by name: its data class's, its models' countries'."""
    if placement is None:
        return []
    rules = [(f"placement.{data_class}", labels)] if (labels := getattr(placement, data_class)) else []
    for country in sorted(set(countries) & set(placement.countries)):
        rules.append((f"placement.countries.{country}", placement.countries[country]))
    return rules


def needed_labels(placement: PlacementSpec | None, data_class: str, countries: Iterable[str]) -> dict[str, str]:
    """The labels a subtask's node must have (PolicyError when two rules ask one label for
    different values)."""
    found: dict[str, str] = {}
    why: dict[str, str] = {}
    for rule, labels in placement_rules(placement, data_class, countries):
        for key, value in labels.items():
            if key in found and found[key] != value:
                raise PolicyError(f"{why[key]} and {rule} ask label {key} to be both {found[key]} and {value}")
            found[key], why[key] = value, rule
    return found


def chain_countries(chain: Iterable[Route]) -> list[str]:
    catalog = load_catalog()
    return [entry.country for route in chain if (entry := catalog.entry_for(route)) is not None]


def run_needs(workflow: Workflow) -> dict[str, dict[str, str]]:
    """Every label set a subtask of this run may need, by what needs it: each of the spec's tasks
    when it lists them (the plan is theirs), else each worker role at each data class the
    workspace's files have (any of them may be planned)."""
    placement = workflow.operator.policy.placement
    if placement is None:
        return {}
    wanted: list[tuple[str, str, str]] = []  # (what, role, data class)
    if workflow.loaded.spec.tasks:
        for index, task in enumerate(workflow.loaded.spec.tasks):
            paths = task.files or list(workflow.file_classes)
            classes = [workflow.base_class, *(workflow.file_classes.get(p, workflow.base_class) for p in paths)]
            wanted.append((f"task {task.id or index + 1} ({task.role})", task.role, max(classes, key=CLASSES.index)))
    else:
        classes = sorted({workflow.base_class, *workflow.file_classes.values()}, key=CLASSES.index)
        wanted = [(f"{role} at {c}", role, c) for c in classes for role in workflow.worker_roles]
    needs: dict[str, dict[str, str]] = {}
    for what, role, data_class in wanted:
        chain = workflow.chains.chain(role, data_class)
        countries = chain_countries(chain)
        labels = needed_labels(placement, data_class, countries) if chain else {}
        if labels:
            rules = ", ".join(rule for rule, _ in placement_rules(placement, data_class, countries))
            needs[f"{what} ({rules})"] = labels
    return needs


def matches(labels: dict[str, str], needed: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in needed.items())


def unplaceable(needs: dict[str, dict[str, str]], nodes: list[dict[str, str]], source: str) -> list[str]:
    """The needs no node of the cluster satisfies, each naming its rule (exit 5 before any call)."""
    return [
        f"{what} needs a node with the labels {labels} ({source}): no node of the Ray cluster has them"
        for what, labels in needs.items()
        if not any(matches(node, labels) for node in nodes)
    ]
