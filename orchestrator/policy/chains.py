"""The chain table: the policy-checked model chain of every role and of every graph node with
models of its own, at each data class the run's files have, built from the spec's model references
(`Resolver`), and the check that every role and node the run needs keeps a model at every data
class it may see (exit 5 at validate, never a surprise at run time). `validate` checks it and the
nodes call from it, so what validation allowed is exactly what a run may use."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from orchestrator.catalog import Catalog, Price, ProviderConfig, Route, UnknownModel
from orchestrator.errors import PolicyError, Problem
from orchestrator.policy._rules import CLASSES, Rules, allowed_by, refusal, rules_for
from orchestrator.policy.serving import decide
from orchestrator.spec import AGGREGATE, PLANNER, Document, Loc, PolicySpec, PriceSpec, Role

if TYPE_CHECKING:
    from orchestrator.spec.graphfile import GraphDefinition
    from orchestrator.spec.operator import OperatorPolicy

ByClass = dict[str, list[Route]]  # data class -> chain


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


EMBEDDED = "local/smollm2"
DEFAULT_KEY = "default"  # models.default: the chain of every role the spec does not name


class Resolver:
    """Turns model references into policy-checked chains, filling one ChainTable and reporting
    problems (unknown models, unconfigured providers) where they are written."""

    def __init__(
        self,
        catalog: Catalog,
        providers: dict[str, ProviderConfig],
        policy: PolicySpec,
        prices: dict[str, PriceSpec],
        classes: list[str],
        floor: OperatorPolicy | None = None,
    ) -> None:
        self.catalog, self.providers, self.policy, self.prices = catalog, providers, policy, prices
        self.floor = floor  # the operator's rules, which the spec's cannot relax
        self.base_class = rules_for(policy, "", None, floor).data_class
        self.classes = sorted(set(classes) | {self.base_class}, key=CLASSES.index)  # the classes a call may see
        self.table = ChainTable(base_class=self.base_class)

    def chain(self, owner: str, written: Written, problems: list[Problem] | None, rules: Rules) -> list[Route]:
        """The chain of the references under `rules`; `owner` (a role or a node) labels what was refused."""
        chain: list[Route] = []
        for index, ref in enumerate(written.refs):
            where = written.at(index)
            try:
                route = self.catalog.resolve(ref, set(self.providers))
            except UnknownModel as exc:
                _add(problems, written.doc.problem(where, str(exc)))
                continue
            if route.provider not in self.providers:
                _add(problems, written.doc.problem(where, f"provider '{route.provider}' is not configured"))
                continue
            if route.ref in self.prices:
                price = self.prices[route.ref]
                route = replace(route, price=Price(input=price.input, output=price.output))
            entry, provider = self.catalog.entry_for(route), self.providers[route.provider]
            reason = refusal(route, entry, provider, rules)
            serving = decide(route, provider, rules) if reason is None else None
            reason = reason or (serving.refusal if serving is not None else None)
            if reason or serving is None:
                self.table.exclude(self.label(owner, rules.data_class), route.ref, reason or "refused")
                continue
            rule = allowed_by(route, entry, provider, rules)
            if serving.pin is not None:
                rule += f"; pinned by {serving.pin.hook} to {serving.pin.rule}"
            elif serving.facts is not None:
                rule += f"; served in {serving.facts.where()}"
            self.table.allowed.setdefault(route.ref, rule)
            chain.append(replace(route, pin=serving.pin))
        return chain

    def label(self, owner: str, data_class: str) -> str:
        return owner if data_class == self.base_class else f"{owner} [{data_class}]"

    def by_class(self, owner: str, role: str, written: Written, problems: list[Problem] | None) -> ByClass:
        """The chain at every data class of the run; problems are reported once (at the base class)."""
        found: ByClass = {}
        for data_class in self.classes:
            report = problems if data_class == self.base_class else None
            rules = rules_for(self.policy, role, data_class, self.floor)
            self.table.labels[(owner, data_class)] = self.label(owner, rules.data_class)
            found[data_class] = self.chain(owner, written, report, rules)
        return found

    def add_role(self, role: str, written: Written, problems: list[Problem] | None) -> None:
        self.table.roles[role] = self.by_class(role, role, written, problems)

    def add_node(self, node: str, role: str, written: Written, problems: list[Problem]) -> None:
        self.table.nodes[node] = self.by_class(node, role, written, problems)


@dataclass(frozen=True)
class Written:
    """Model references where a file wrote them: a problem names the item (`models.debug.1`) when
    they are a list, the field (`models.debug`) when a single reference."""

    refs: list[str]
    doc: Document
    loc: Loc
    listed: bool

    def at(self, index: int) -> Loc:
        return (*self.loc, index) if self.listed else self.loc


def _add(problems: list[Problem] | None, problem: Problem) -> None:
    if problems is not None and problem not in problems:
        problems.append(problem)


def resolve_role_chains(
    resolver: Resolver,
    models: dict[str, list[str]],
    raw: dict[str, object],
    doc: Document,
    roles: dict[str, Role],
    problems: list[Problem],
) -> None:
    """Every role's chain (the aggregate is served by the planner's): its own `models.ROLE`, or
    `models.default`, or the embedded model."""
    default = models.get(DEFAULT_KEY, [EMBEDDED])
    for role in roles:
        if role == AGGREGATE:
            continue
        key = role if role in models else DEFAULT_KEY
        written = Written(models.get(role, default), doc, ("models", key), isinstance(raw.get(key), list))
        resolver.add_role(role, written, problems if key in models else None)


def resolve_node_chains(resolver: Resolver, graph: GraphDefinition, problems: list[Problem]) -> None:
    """Graph nodes with models of their own (they override the spec's models for that node)."""
    raw_nodes = graph.document.data.get("nodes") or {}
    for name, node in graph.graph.nodes.items():
        if node.models:
            listed = isinstance((raw_nodes.get(name) or {}).get("models"), list)
            written = Written(node.models, graph.document, ("nodes", name, "models"), listed)
            resolver.add_node(name, node.role or PLANNER, written, problems)


@dataclass(frozen=True)
class Need:
    """A role (or a graph node with its own models) that must have a model at a data class."""

    role: str
    data_class: str
    node: str | None = None
    why: str = ""  # what makes the class this high ("files of class confidential: a.py")


def check_needs(table: ChainTable, needs: list[Need]) -> None:
    """PolicyError (exit 5) naming every role or node that has no allowed model at a data class it
    may see, and why each of its models was refused."""
    lines = []
    for need in needs:
        if table.chain(need.role, need.data_class, node=need.node):
            continue
        owner = need.node if need.node is not None else need.role
        label = table.label(owner, need.data_class)
        what = f"graph node '{label}'" if need.node is not None else f"'{label}'"
        why = f": it sees {need.why}" if need.why else ""
        lines.append(f"{what} has no allowed model{why} ({table.why_empty(label)})")
    if lines:
        raise PolicyError("\n".join(dict.fromkeys(lines)))
