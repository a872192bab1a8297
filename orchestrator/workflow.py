"""From a loaded spec to a workflow ready to run: roles, providers, model chains (with the
policy applied), the graph and the files. `orchestrator validate` stops here; nothing in this
module calls a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from orchestrator.catalog import Catalog, Price, Route, UnknownModel, load_catalog
from orchestrator.endpoint import merge_providers
from orchestrator.errors import PolicyError, Problem, SpecError
from orchestrator.graph import GraphDefinition, RoleDef, check_graph, is_python_graph, load_graph
from orchestrator.policy import CLASSES, Rules, allowed_by, file_class, refusal, rules_for
from orchestrator.price import check_prices
from orchestrator.registry import ProviderConfig
from orchestrator.role import AGGREGATE, PLANNER, Role, builtin_roles, worker_roles
from orchestrator.source import Document, Loc, close_match
from orchestrator.spec import LoadedSpec, PolicySpec, PriceSpec, RoleSpec
from orchestrator.workspace import FileSet, collect_files

EMBEDDED = "local/smollm2"
DEFAULT_KEY = "default"  # models.default: the chain of every role the spec does not name
RESERVED = (PLANNER, AGGREGATE, DEFAULT_KEY, "plan", "START", "END")


@dataclass
class Workflow:
    loaded: LoadedSpec
    graph: GraphDefinition | None  # a YAML graph; None for a Python graph
    roles: dict[str, Role]
    providers: dict[str, ProviderConfig]
    chains: dict[str, list[Route]]
    excluded: dict[str, list[dict[str, str]]]
    files: FileSet
    node_chains: dict[str, list[Route]] = field(default_factory=dict)
    python_graph: Any = None  # the StateGraph (or compiled graph) a Python graph returned
    warnings: list[str] = field(default_factory=list)
    class_chains: dict[str, dict[str, list[Route]]] = field(default_factory=dict)  # role -> data class -> chain
    node_class_chains: dict[str, dict[str, list[Route]]] = field(default_factory=dict)  # graph node -> class -> chain
    file_classes: dict[str, str] = field(default_factory=dict)  # workspace file -> its data class
    allowed: dict[str, str] = field(default_factory=dict)  # provider/model -> the rule it passed

    @property
    def base_class(self) -> str:
        return str(self.loaded.spec.policy.data_class or "internal")

    def chain_for(self, role: str, data_class: str) -> list[Route]:
        return self.class_chains.get(role, {}).get(data_class, self.chains.get(role, []))

    @property
    def graph_name(self) -> str:
        return self.graph.name if self.graph is not None else self.loaded.spec.graph

    @property
    def worker_roles(self) -> list[str]:
        """Worker roles that have at least one allowed model (the planner may use these)."""
        return [name for name in worker_roles(self.roles) if self.chains.get(name)]


class _Resolver:
    """Turns model references into policy-checked chains, reporting problems where they are."""

    def __init__(
        self,
        catalog: Catalog,
        providers: dict[str, ProviderConfig],
        policy: PolicySpec,
        prices: dict[str, PriceSpec],
    ) -> None:
        self.catalog, self.providers, self.policy, self.prices = catalog, providers, policy, prices
        self.excluded: dict[str, list[dict[str, str]]] = {}
        self.allowed: dict[str, str] = {}

    def chain(
        self,
        owner: str,
        refs: list[str],
        doc: Document,
        loc: Loc,
        listed: bool,
        problems: list[Problem] | None,
        rules: Rules | None = None,
    ) -> list[Route]:
        """The policy-checked chain of `refs`; `owner` is the role or node (for reasons)."""
        rules = rules or rules_for(self.policy, owner)
        chain: list[Route] = []
        for index, ref in enumerate(refs):
            where = (*loc, index) if listed else loc
            try:
                route = self.catalog.resolve(ref, set(self.providers))
            except UnknownModel as exc:
                _add(problems, doc.problem(where, str(exc)))
                continue
            if route.provider not in self.providers:
                _add(problems, doc.problem(where, f"provider '{route.provider}' is not configured"))
                continue
            if route.ref in self.prices:
                price = self.prices[route.ref]
                route = replace(route, price=Price(input=price.input, output=price.output))
            entry, provider = self.catalog.entry_for(route), self.providers[route.provider]
            reason = refusal(route, entry, provider, rules)
            label = (
                owner if rules.data_class == (self.policy.data_class or "internal") else f"{owner} [{rules.data_class}]"
            )
            if reason:
                excluded = {"model": route.ref, "reason": reason}
                if excluded not in self.excluded.setdefault(label, []):
                    self.excluded[label].append(excluded)
            else:
                self.allowed.setdefault(route.ref, allowed_by(route, entry, provider, rules))
                chain.append(route)
        return chain


def _add(problems: list[Problem] | None, problem: Problem) -> None:
    if problems is not None and problem not in problems:
        problems.append(problem)


def prepare_workflow(loaded: LoadedSpec) -> Workflow:
    """Check the meaning of a spec and resolve everything a run needs. Raises SpecError
    (exit 2) or PolicyError (exit 5)."""
    spec = loaded.spec
    problems: list[Problem] = []
    catalog = load_catalog()
    graph: GraphDefinition | None = None
    if not is_python_graph(spec.graph):
        try:
            graph = load_graph(spec.graph, loaded.base_dir)
        except SpecError as exc:
            problems += [_at_graph(loaded, p) for p in exc.problems]
    roles = _roles(loaded, graph, problems)
    providers = merge_providers(loaded, catalog, problems)
    resolver = _Resolver(catalog, providers, spec.policy, spec.prices)
    chains = _chains(loaded, resolver, roles, problems)
    node_chains = _node_chains(graph, resolver, problems) if graph is not None else {}
    if graph is not None:
        problems += [p for p in check_graph(graph, set(roles)) if p.field.endswith(".role")]
    files = collect_files(loaded.workspace, spec.include, spec.exclude)
    _check_tasks(loaded, roles, files, problems)
    file_classes = {f.path: file_class(spec.policy, f.path) for f in files.files}
    class_chains = _class_chains(loaded, resolver, roles, set(file_classes.values()))
    check_prices(loaded, [*chains.values(), *node_chains.values()], providers, problems)
    if problems:
        raise SpecError(problems)
    workflow = Workflow(loaded, graph, roles, providers, chains, resolver.excluded, files, node_chains)
    workflow.class_chains, workflow.file_classes = class_chains, file_classes
    if graph is not None:
        workflow.node_class_chains = _node_class_chains(loaded, graph, resolver, set(file_classes.values()))
    workflow.allowed = resolver.allowed
    if is_python_graph(spec.graph):
        _build_python_graph(workflow, resolver)
    if not files.files:
        workflow.warnings.append("no file in the workspace matches include/exclude")
    if spec.tasks and graph is not None and not graph.nodes_of("plan"):
        workflow.warnings.append(f"graph '{graph.name}' has no plan node: the spec's tasks are not used")
    _check_policy(workflow)
    return workflow


def _at_graph(loaded: LoadedSpec, problem: Problem) -> Problem:
    """Problems in the graph reference itself point at the spec's `graph` field."""
    if problem.file:
        return problem
    return loaded.problem(("graph",), problem.message)


def _role(name: str, definition: RoleSpec | RoleDef, base_dir: Path) -> Role:
    if definition.prompt_file:
        prompt = (base_dir / definition.prompt_file).read_text(encoding="utf-8")
    else:
        prompt = definition.prompt or ""
    kind = definition.output if isinstance(definition.output, str) else "JSON Schema"
    return Role(
        name=name,
        output=definition.output,
        prompt=prompt,
        description=definition.description or f"custom role ({kind})",
    )


def _roles(loaded: LoadedSpec, graph: GraphDefinition | None, problems: list[Problem]) -> dict[str, Role]:
    """Built-in roles, then the graph's, then the spec's (a spec may redefine a graph's role)."""
    roles = builtin_roles()
    sources: list[tuple[dict[str, Any], Document, Path, tuple[str, ...]]] = []
    if graph is not None:
        sources.append((dict(graph.graph.roles), graph.document, graph.base_dir, ("roles",)))
    sources.append((dict(loaded.spec.roles), loaded.document, loaded.base_dir, ("roles",)))
    for definitions, doc, base_dir, loc in sources:
        for name, definition in definitions.items():
            if name in RESERVED:
                problems.append(doc.problem((*loc, name), f"'{name}' is reserved for the workflow itself"))
            elif (definition.prompt is None) == (definition.prompt_file is None):
                problems.append(doc.problem((*loc, name), "give exactly one of prompt or prompt_file"))
            elif definition.prompt_file and not (base_dir / definition.prompt_file).is_file():
                problems.append(doc.problem((*loc, name, "prompt_file"), "file not found"))
            elif isinstance(definition.output, dict) and (error := _schema_error(definition.output)):
                problems.append(doc.problem((*loc, name, "output"), f"not a valid JSON Schema: {error}"))
            else:
                roles[name] = _role(name, definition, base_dir)
    return roles


def _schema_error(schema: dict[str, Any]) -> str | None:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return exc.message
    return None if schema.get("type") == "object" else "the answer must be an object (type: object)"


def _chains(
    loaded: LoadedSpec, resolver: _Resolver, roles: dict[str, Role], problems: list[Problem]
) -> dict[str, list[Route]]:
    spec = loaded.spec
    raw = loaded.document.data.get("models") or {}
    model_roles = [name for name in roles if name != AGGREGATE]
    for name in spec.models:
        if name != DEFAULT_KEY and name not in model_roles:
            hint = close_match(name, model_roles)
            problems.append(loaded.problem(("models", name), f"unknown role '{name}'{hint}"))
    default = spec.models.get(DEFAULT_KEY, [EMBEDDED])
    chains: dict[str, list[Route]] = {}
    for role in model_roles:
        key = role if role in spec.models else DEFAULT_KEY
        refs = spec.models.get(role, default)
        report = problems if key in spec.models else None
        chains[role] = resolver.chain(
            role, refs, loaded.document, ("models", key), isinstance(raw.get(key), list), report
        )
    return chains


def _class_chains(
    loaded: LoadedSpec, resolver: _Resolver, roles: dict[str, Role], classes: set[str]
) -> dict[str, dict[str, list[Route]]]:
    """For every role, its chain at each data class the files have (a confidential file holds
    the subtask that sees it to the confidential rules)."""
    spec = loaded.spec
    default = spec.models.get(DEFAULT_KEY, [EMBEDDED])
    found: dict[str, dict[str, list[Route]]] = {}
    for role in roles:
        if role == AGGREGATE:
            continue
        refs = spec.models.get(role, default)
        for data_class in sorted(classes, key=CLASSES.index):
            rules = rules_for(spec.policy, role, data_class)
            chain = resolver.chain(role, refs, loaded.document, ("models",), False, None, rules)
            found.setdefault(role, {})[data_class] = chain
    return found


def _node_chains(graph: GraphDefinition, resolver: _Resolver, problems: list[Problem]) -> dict[str, list[Route]]:
    """Graph nodes with models of their own (they override the spec's models for that node)."""
    raw_nodes = graph.document.data.get("nodes") or {}
    found = {}
    for name, node in graph.graph.nodes.items():
        if node.models:
            listed = isinstance((raw_nodes.get(name) or {}).get("models"), list)
            rules = rules_for(resolver.policy, node.role or PLANNER)
            loc = ("nodes", name, "models")
            found[name] = resolver.chain(name, node.models, graph.document, loc, listed, problems, rules)
    return found


def _node_class_chains(
    loaded: LoadedSpec, graph: GraphDefinition, resolver: _Resolver, classes: set[str]
) -> dict[str, dict[str, list[Route]]]:
    """Graph nodes with models of their own, at each data class (the node's role's rules)."""
    found: dict[str, dict[str, list[Route]]] = {}
    for name, node in graph.graph.nodes.items():
        if node.models:
            role = node.role or PLANNER
            for data_class in sorted(classes, key=CLASSES.index):
                rules = rules_for(loaded.spec.policy, role, data_class)
                chain = resolver.chain(name, node.models, graph.document, ("nodes", name), False, None, rules)
                found.setdefault(name, {})[data_class] = chain
    return found


def _build_python_graph(workflow: Workflow, resolver: _Resolver) -> None:
    from orchestrator.compile import GraphKit, build_python_graph, load_python_graph

    loaded = workflow.loaded
    ref = loaded.spec.graph
    problems: list[Problem] = []

    def resolve(name: str, refs: list[str]) -> list[Route]:
        found = resolver.chain(name, refs, loaded.document, ("graph",), False, problems)
        if problems:
            raise SpecError(list(problems))
        return found

    try:
        builder = load_python_graph(ref, loaded.base_dir)
        kit = GraphKit(worker_roles=sorted(workflow.worker_roles), resolve_models=resolve)
        workflow.python_graph = build_python_graph(ref, builder, kit)
    except SpecError as exc:
        raise SpecError([_at_graph(loaded, p) for p in exc.problems]) from None
    workflow.node_chains.update(kit.node_models)
    workflow.excluded = resolver.excluded


def _check_tasks(loaded: LoadedSpec, roles: dict[str, Role], files: FileSet, problems: list[Problem]) -> None:
    workers = list(worker_roles(roles))
    paths = {f.path for f in files.files}
    for index, task in enumerate(loaded.spec.tasks):
        if task.role not in workers:
            hint = close_match(task.role, workers)
            problems.append(loaded.problem(("tasks", index, "role"), f"unknown role '{task.role}'{hint}"))
        for position, path in enumerate(task.files):
            if path not in paths:
                loc = ("tasks", index, "files", position)
                problems.append(loaded.problem(loc, f"'{path}' is not among the included workspace files"))


def needed_roles(workflow: Workflow) -> list[str]:
    """Roles the run cannot do without: the planner (for planning, aggregation and merges
    without models of their own), the roles of the graph's role and ensemble nodes, and the
    spec's task roles (or, without tasks, the roles it names in `models`)."""
    spec = workflow.loaded.spec
    graph = workflow.graph
    if graph is None:  # a Python graph: whatever the spec names
        return [PLANNER, *sorted(set(spec.models) - {PLANNER, DEFAULT_KEY})]
    needed: set[str] = set()
    nodes = graph.graph.nodes
    if any(n.kind == "plan" or (n.kind in ("aggregate", "merge") and not n.models) for n in nodes.values()):
        needed.add(PLANNER)
    needed |= {n.role for name, n in nodes.items() if n.kind in ("role", "ensemble") and n.role and not n.models}
    if graph.nodes_of("fanout"):
        needed |= {t.role for t in spec.tasks} or set(spec.models) - {PLANNER, DEFAULT_KEY}
    return sorted(needed)


def _check_policy(workflow: Workflow) -> None:
    """Exit 5 when a role or graph node the run needs has no allowed model left, at the run's
    data class or at the class of the files it may see."""
    spec = workflow.loaded.spec
    classes = sorted(set(workflow.file_classes.values()) | {workflow.base_class}, key=CLASSES.index)
    highest = classes[-1]
    needs: list[tuple[str, str]] = []  # (role, data class)
    for role in needed_roles(workflow):
        task_files = [t.files or list(workflow.file_classes) for t in spec.tasks if t.role == role]
        if task_files:
            seen = {workflow.file_classes.get(p, workflow.base_class) for files in task_files for p in files}
            needs.append((role, max(seen | {workflow.base_class}, key=CLASSES.index)))
        else:  # the planner and roles without tasks may see any file
            needs.append((role, highest))
    empty = [
        f"{role}" + ("" if c == workflow.base_class else f" [{c}]")
        for role, c in needs
        if not workflow.chain_for(role, c)
    ]
    empty += [name for name, chain in workflow.node_chains.items() if not chain]
    if empty:
        lines = []
        for owner in empty:
            reasons = "; ".join(f"{e['model']}: {e['reason']}" for e in workflow.excluded.get(owner, []))
            lines.append(f"'{owner}' has no allowed model ({reasons or 'no model configured'})")
        raise PolicyError("\n".join(lines))
    for role in worker_roles(workflow.roles):
        if not workflow.chains.get(role):
            workflow.warnings.append(f"role '{role}' has no allowed model; the planner will not use it")


def describe(workflow: Workflow) -> dict[str, Any]:
    """What `validate` and `run --dry-run` print: the resolved plan of the run."""
    spec = workflow.loaded.spec
    return {
        "spec": str(workflow.loaded.path),
        "name": spec.name,
        "graph": workflow.graph_name,
        "workspace": str(workflow.loaded.workspace),
        "files": [f.path for f in workflow.files.files],
        "skipped_files": [{"path": p, "reason": r} for p, r in workflow.files.skipped],
        "tasks": [t.model_dump() for t in spec.tasks],
        "chains": {role: [r.ref for r in chain] for role, chain in workflow.chains.items()},
        "node_chains": {node: [r.ref for r in chain] for node, chain in workflow.node_chains.items()},
        "excluded_by_policy": workflow.excluded,
        "warnings": workflow.warnings,
    }
