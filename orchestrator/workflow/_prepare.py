"""From a loaded spec to a workflow ready to run: roles, providers, the chain table (the policy
applied per role, per graph node and per data class), the graph and the files. `orchestrator
validate` stops here; nothing in this module calls a model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from orchestrator.catalog import load_catalog
from orchestrator.diff import DiffScope
from orchestrator.errors import PolicyError, Problem, SpecError
from orchestrator.policy import CLASSES, Egress
from orchestrator.policy.chains import (
    DEFAULT_KEY,
    ChainTable,
    Need,
    Resolver,
    Written,
    resolve_node_chains,
    resolve_role_chains,
)
from orchestrator.policy.floor import PolicyLine
from orchestrator.policy.run import RunPolicy
from orchestrator.policy.tracing import allow_tracing
from orchestrator.spec import (
    AGGREGATE,
    PLANNER,
    Document,
    LoadedSpec,
    Role,
    RoleSpec,
    builtin_roles,
    close_match,
    worker_roles,
)
from orchestrator.spec.graphfile import GraphDefinition, check_graph, is_python_graph, load_graph
from orchestrator.spec.operator import Operator, OperatorPolicy, load_operator
from orchestrator.spec.roles import configure_role, make_role
from orchestrator.workflow._diff import review_scope
from orchestrator.workflow._mcp import graph_tool_problems
from orchestrator.workflow._prices import check_prices
from orchestrator.workflow._providers import declare_serving, merge_providers
from orchestrator.workspace import FileSet, collect_files, glob_match

RESERVED = (PLANNER, AGGREGATE, DEFAULT_KEY, "plan", "START", "END")


@dataclass
class Workflow:
    loaded: LoadedSpec
    graph: GraphDefinition | None  # a YAML graph; None for a Python graph
    roles: dict[str, Role]
    providers: dict[str, Any]  # name -> ProviderConfig
    chains: ChainTable
    files: FileSet
    python_graph: Any = None  # the StateGraph (or compiled graph) a Python graph returned
    warnings: list[str] = field(default_factory=list)
    file_classes: dict[str, str] = field(default_factory=dict)  # workspace file -> its data class
    operator: Operator = field(default_factory=Operator)  # their policy floor; whether the spec is trusted
    floor: OperatorPolicy | None = None  # the rules the spec cannot relax
    policy_lines: list[PolicyLine] = field(default_factory=list)  # the effective rules and their sources
    sandboxed_servers: list[str] = field(default_factory=list)  # the spec's MCP servers run in the sandbox
    diff: DiffScope | None = None  # the files changed since diff_base, which the run reviews (None: every file)
    # the highest class of what a check's scratch copy holds (every file, selected or not):
    # a check's output is withheld from a model that may not see it ("": no checks)
    check_class: str = ""

    @property
    def base_class(self) -> str:
        return self.chains.base_class

    @property
    def graph_name(self) -> str:
        return self.graph.name if self.graph is not None else self.loaded.spec.graph

    @property
    def top_class(self) -> str:
        """The highest data class of the run and its files (what a role may see of the workspace)."""
        return max([self.base_class, *self.file_classes.values()], key=CLASSES.index)

    def allow_tracing(self, egress: Egress | None) -> None:
        """PolicyError (exit 5) when `--trace`'s endpoint may not receive what the run sees; else
        the endpoint is declared in the egress report (`orchestrator.policy.tracing`)."""
        spec = self.loaded.spec
        allow_tracing(spec.policy, self.floor, roles=self.roles, data_class=self.top_class, egress=egress)

    @property
    def worker_roles(self) -> list[str]:
        """Worker roles that have at least one allowed model (the planner may use these)."""
        return [name for name in worker_roles(self.roles) if self.chains.base(name)]


def prepare_workflow(loaded: LoadedSpec, operator: Operator | None = None) -> Workflow:
    """Check the meaning of a spec and resolve everything a run needs, under the operator's policy
    (by default the one this process's environment names) and trust. Raises SpecError (exit 2) or
    PolicyError (exit 5); nothing outside the spec's repository is read first."""
    spec = loaded.spec
    operator = operator if operator is not None else load_operator()
    if operator.workspace is not None:  # the operator's --workspace replaces the spec's
        loaded.workspace = operator.workspace
    problems: list[Problem] = []
    catalog = load_catalog()
    rules = RunPolicy(loaded, operator, catalog)
    graph: GraphDefinition | None = None
    if not is_python_graph(spec.graph):
        try:
            graph = load_graph(spec.graph, loaded.base_dir)
        except SpecError as exc:
            problems += [_at_graph(loaded, p) for p in exc.problems]
    rules.confine(graph, problems)
    problems += graph_tool_problems(loaded, graph)
    if problems:  # before any file of the workspace, prompt or module is read
        raise SpecError(problems)
    roles = _roles(loaded, graph, problems)
    _check_model_keys(loaded, roles, problems)
    providers = merge_providers(loaded, catalog, problems, operator.trusted_hosts, operator.trusted_keys)
    declare_serving(providers, loaded, operator)
    refused = rules.refusals(providers)
    if refused and not problems:
        raise PolicyError("\n".join(refused))
    floor = rules.settle()
    files = collect_files(loaded.workspace, spec.include, spec.exclude)
    diff_warnings: list[str] = []
    scope = review_scope(loaded, files, diff_warnings)
    file_classes = {f.path: rules.file_class(f.path) for f in files.files}
    unselected = _unselected_classes(rules, file_classes)
    classes = [*file_classes.values(), *unselected.values()]
    resolver = rules.resolver(providers, classes)
    raw_models = loaded.document.data.get("models") or {}
    resolve_role_chains(resolver, dict(spec.models), raw_models, loaded.document, roles, problems)
    if graph is not None:
        resolve_node_chains(resolver, graph, problems)
        problems += [p for p in check_graph(graph, set(roles)) if p.field.endswith(".role")]
    _check_tasks(loaded, roles, files, problems)
    table = resolver.table
    check_prices(loaded, [*table.base_chains().values(), *table.node_chains().values()], providers, problems)
    if problems:
        raise SpecError(problems)
    refused = rules.egress_refusals(roles, file_classes, table.base_class)
    if refused:
        raise PolicyError("\n".join(refused))
    workflow = Workflow(loaded, graph, roles, providers, table, files, file_classes=file_classes)
    workflow.operator, workflow.floor = operator, floor
    if spec.checks:
        selected = workflow.top_class
        workflow.check_class = max([selected, *unselected.values()], key=CLASSES.index)
        above = [p for p, c in unselected.items() if CLASSES.index(c) > CLASSES.index(selected)]
        if above:
            top = workflow.check_class
            workflow.warnings.append(
                f"checks run on a copy of the whole workspace, which holds {len(above)} {top} file(s) the "
                f"selection leaves out: check output is withheld from every model that may not see {top} data"
            )
    workflow.policy_lines = rules.lines()
    workflow.sandboxed_servers = rules.sandboxed_servers()
    workflow.diff = scope
    workflow.warnings += diff_warnings
    if is_python_graph(spec.graph):
        _build_python_graph(workflow, resolver)
    if not files.files:
        workflow.warnings.append("no file in the workspace matches include/exclude")
    if spec.tasks and graph is not None and not graph.nodes_of("plan"):
        workflow.warnings.append(f"graph '{graph.name}' has no plan node: the spec's tasks are not used")
    rules.check_needs(table, needs(workflow), workflow.policy_lines)
    for role in worker_roles(workflow.roles):
        if not table.base(role):
            workflow.warnings.append(f"role '{role}' has no allowed model; the planner will not use it")
    return workflow


def _at_graph(loaded: LoadedSpec, problem: Problem) -> Problem:
    """Problems in the graph reference itself point at the spec's `graph` field."""
    if problem.file:
        return problem
    return loaded.problem(("graph",), problem.message)


def _roles(loaded: LoadedSpec, graph: GraphDefinition | None, problems: list[Problem]) -> dict[str, Role]:
    """Built-in roles, then the graph's, then the spec's (a spec may redefine a graph's role)."""
    roles = builtin_roles()
    sources: list[tuple[dict[str, RoleSpec], Document, Path]] = []
    if graph is not None:
        sources.append((dict(graph.graph.roles), graph.document, graph.base_dir))
    sources.append((dict(loaded.spec.roles), loaded.document, loaded.base_dir))
    for definitions, doc, base_dir in sources:
        for name, definition in definitions.items():
            loc = ("roles", name)
            if name in RESERVED:
                problems.append(doc.problem(loc, f"'{name}' is reserved for the workflow itself"))
            elif definition.settings_only and name in roles:  # a known role's tools, turns, edit format
                roles[name] = configure_role(roles[name], definition)
            elif definition.output is None:
                problems.append(doc.problem((*loc, "output"), "required field is missing (a new role needs an output)"))
            elif (definition.prompt is None) == (definition.prompt_file is None):
                problems.append(doc.problem(loc, "give exactly one of prompt or prompt_file"))
            elif isinstance(definition.output, dict) and (error := _schema_error(definition.output)):
                problems.append(doc.problem((*loc, "output"), f"not a valid JSON Schema: {error}"))
            else:
                try:
                    roles[name] = make_role(name, definition, base_dir)
                except SpecError as exc:  # a prompt file that is missing, binary, too large, ...
                    why = exc.problems[0].message.replace("prompt file not found", "file not found")
                    problems.append(doc.problem((*loc, "prompt_file"), why))
    return roles


def _schema_error(schema: dict[str, Any]) -> str | None:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return exc.message
    return None if schema.get("type") == "object" else "the answer must be an object (type: object)"


def _check_model_keys(loaded: LoadedSpec, roles: dict[str, Role], problems: list[Problem]) -> None:
    model_roles = [name for name in roles if name != AGGREGATE]
    for name in loaded.spec.models:
        if name != DEFAULT_KEY and name not in model_roles:
            hint = close_match(name, model_roles)
            problems.append(loaded.problem(("models", name), f"unknown role '{name}'{hint}"))


def _build_python_graph(workflow: Workflow, resolver: Resolver) -> None:
    from orchestrator.engine.python_graph import GraphKit, build_python_graph, load_python_graph

    loaded = workflow.loaded
    ref = loaded.spec.graph
    problems: list[Problem] = []

    def resolve(name: str, role: str, refs: list[str]) -> None:
        resolver.add_node(name, role, Written(refs, loaded.document, ("graph",), False), problems)
        if problems:
            raise SpecError(list(problems))

    try:
        builder = load_python_graph(ref, loaded.base_dir)
        kit = GraphKit(worker_roles=sorted(workflow.worker_roles), resolve_models=resolve)
        workflow.python_graph = build_python_graph(ref, builder, kit)
    except SpecError as exc:
        raise SpecError([_at_graph(loaded, p) for p in exc.problems]) from None


def _unselected_classes(rules: RunPolicy, file_classes: dict[str, str]) -> dict[str, str]:
    """The data class of each file a check's scratch copy holds that the selection leaves out (a
    check reads the whole workspace); none without checks, or without file rules (then every
    file is of the run's class)."""
    from orchestrator.checks import copied_paths

    spec = rules.loaded.spec
    if not spec.checks or not (spec.policy.files or (rules.floor is not None and rules.floor.files)):
        return {}
    copied = copied_paths(rules.loaded.workspace)
    return {p: rules.file_class(p) for p in copied if p not in file_classes}


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
    needed |= {n.role for n in nodes.values() if n.kind in ("role", "ensemble") and n.role and not n.models}
    if graph.nodes_of("fanout"):
        needed |= {t.role for t in spec.tasks} or set(spec.models) - {PLANNER, DEFAULT_KEY}
    return sorted(needed)


def _class_of(workflow: Workflow, paths: list[str]) -> tuple[str, str]:
    """The highest data class among `paths` (and the run's), and which files make it so."""
    found = max(
        [workflow.base_class, *(workflow.file_classes.get(p, workflow.base_class) for p in paths)], key=CLASSES.index
    )
    if found == workflow.base_class:
        return found, ""
    which = [p for p in paths if workflow.file_classes.get(p) == found]
    shown = ", ".join(which[:3]) + (f" and {len(which) - 3} more" if len(which) > 3 else "")
    return found, f"files of class {found} ({shown})"


def needs(workflow: Workflow) -> list[Need]:
    """Every (role or node, data class) the run may call at: roles at the class of their tasks'
    files (any file when they have no task), graph nodes with models of their own at the class of
    what they read: their files and, through their inputs, what earlier nodes saw."""
    spec = workflow.loaded.spec
    every = list(workflow.file_classes)
    found: list[Need] = []
    for role in needed_roles(workflow):
        task_files = [p for t in spec.tasks if t.role == role for p in (t.files or every)]
        has_tasks = any(t.role == role for t in spec.tasks)
        data_class, why = _class_of(workflow, task_files if has_tasks else every)
        found.append(Need(role, data_class, why=why))
    graph = workflow.graph
    if graph is not None:
        for node, (data_class, why) in _graph_node_classes(workflow, graph).items():
            if node in workflow.chains.nodes:
                role = graph.graph.nodes[node].role or PLANNER
                found.append(Need(role, data_class, node=node, why=why))
    elif workflow.python_graph is not None:  # a Python graph's structure is code: its nodes may see anything
        data_class, why = _class_of(workflow, every)
        found += [Need(PLANNER, data_class, node=node, why=why) for node in workflow.chains.nodes]
    return found


def _graph_node_classes(workflow: Workflow, graph: GraphDefinition) -> dict[str, tuple[str, str]]:
    """The data class of what each node of a YAML graph sees, propagated along its inputs."""
    nodes = graph.graph.nodes
    every = list(workflow.file_classes)
    classes: dict[str, tuple[str, str]] = {}
    for name, node in nodes.items():
        if node.kind in ("role", "ensemble"):
            paths = [p for p in every if any(glob_match(p, g) for g in node.files)] if node.files else every
        elif node.kind == "aggregate":
            paths = every  # the report repeats what every subtask saw
        else:
            paths = []
        classes[name] = _class_of(workflow, paths)
    reads = {
        name: (node.inputs if node.inputs is not None else [e.source for e in graph.edges if e.target == name])
        + ([node.of] if node.of else [])
        for name, node in nodes.items()
    }
    changed = True
    while changed:  # at most len(CLASSES) rounds: classes only go up
        changed = False
        for name, sources in reads.items():
            for source in sources:
                if source in classes and CLASSES.index(classes[source][0]) > CLASSES.index(classes[name][0]):
                    data_class, why = classes[source]
                    classes[name] = (
                        data_class,
                        f"the output of '{source}', which saw {why.removeprefix('the output of ')}",
                    )
                    changed = True
    return classes
