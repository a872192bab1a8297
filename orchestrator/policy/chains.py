"""The chain table: the policy-checked model chain of every role and of every graph node with
models of its own, at each data class the run's files have. `validate` checks it and the nodes
call from it, so what validation allowed is exactly what a run may use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.catalog import Route

ByClass = dict[str, list["Route"]]  # data class -> chain


@dataclass
class Excluded:
    model: str
    reason: str


@dataclass
class ChainTable:
    base_class: str = "internal"
    roles: dict[str, ByClass] = field(default_factory=dict)  # role -> data class -> chain
    nodes: dict[str, ByClass] = field(default_factory=dict)  # graph node with its own models -> ...
    excluded: dict[str, list[Excluded]] = field(default_factory=dict)  # "owner" or "owner [class]" -> refused
    allowed: dict[str, str] = field(default_factory=dict)  # provider/model -> the rule it passed
    labels: dict[tuple[str, str], str] = field(default_factory=dict)  # (owner, class) -> its `excluded` key

    def chain(self, role: str, data_class: str | None = None, node: str | None = None) -> list[Route]:
        """The chain for a role (or a graph node with its own models) at a data class. A class the
        table was not built for has no chain: the call fails closed, never on a looser chain."""
        table = self.nodes[node] if node is not None and node in self.nodes else self.roles.get(role, {})
        return list(table.get(data_class or self.base_class, []))

    def base(self, role: str) -> list[Route]:
        return self.chain(role)

    def base_chains(self) -> dict[str, list[Route]]:
        """role -> its chain at the run's data class (what `validate` prints)."""
        return {role: self.chain(role) for role in self.roles}

    def node_chains(self) -> dict[str, list[Route]]:
        return {node: self.chain("", node=node) for node in self.nodes}

    def exclude(self, owner: str, model: str, reason: str) -> None:
        entry = Excluded(model, reason)
        if entry not in self.excluded.setdefault(owner, []):
            self.excluded[owner].append(entry)

    def excluded_report(self) -> dict[str, list[dict[str, str]]]:
        return {owner: [vars(e).copy() for e in items] for owner, items in self.excluded.items()}

    def label(self, owner: str, data_class: str) -> str:
        """How `excluded` names an owner at a class: `debug`, or `debug [confidential]` when the
        rules that applied were those of a higher class than the run's."""
        return self.labels.get((owner, data_class), owner)

    def why_empty(self, label: str) -> str:
        reasons = "; ".join(f"{e.model}: {e.reason}" for e in self.excluded.get(label, []))
        return reasons or "no model configured"
