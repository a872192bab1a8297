"""From a loaded spec to a workflow ready to run: roles, providers, model chains (with the
policy applied), the graph and the files. `orchestrator validate` stops here; nothing in this
module calls a model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from orchestrator.catalog import Catalog, Route, UnknownModel, load_catalog
from orchestrator.errors import PolicyError, Problem, SpecError
from orchestrator.graph import GraphDefinition, load_graph
from orchestrator.policy import refusal
from orchestrator.registry import ProviderConfig, registry
from orchestrator.role import AGGREGATE, PLANNER, Role, builtin_roles, worker_roles
from orchestrator.source import close_match
from orchestrator.spec import LoadedSpec
from orchestrator.workspace import FileSet, collect_files

EMBEDDED = "local/smollm2"
DEFAULT_KEY = "default"  # models.default: the chain of every role the spec does not name
TRUSTED_HOSTS_ENV = "ORCHESTRATOR_TRUSTED_HOSTS"


@dataclass
class Workflow:
    loaded: LoadedSpec
    graph: GraphDefinition
    roles: dict[str, Role]
    providers: dict[str, ProviderConfig]
    chains: dict[str, list[Route]]
    excluded: dict[str, list[dict[str, str]]]
    files: FileSet
    warnings: list[str] = field(default_factory=list)

    @property
    def worker_roles(self) -> list[str]:
        """Worker roles that have at least one allowed model (the planner may use these)."""
        return [name for name in worker_roles(self.roles) if self.chains.get(name)]


def prepare_workflow(loaded: LoadedSpec) -> Workflow:
    """Check the meaning of a spec and resolve everything a run needs. Raises SpecError
    (exit 2) or PolicyError (exit 5)."""
    spec = loaded.spec
    problems: list[Problem] = []
    catalog = load_catalog()
    try:
        graph = load_graph(spec.graph, loaded.base_dir)
    except SpecError as exc:
        problems += [_at_graph(loaded, p) for p in exc.problems]
        graph = None
    roles = _roles(loaded, problems)
    providers = _providers(loaded, catalog, problems)
    chains, excluded = _chains(loaded, catalog, roles, providers, problems)
    files = collect_files(loaded.workspace, spec.include, spec.exclude)
    _check_tasks(loaded, roles, files, problems)
    if problems or graph is None:
        raise SpecError(problems)
    workflow = Workflow(loaded, graph, roles, providers, chains, excluded, files)
    if not files.files:
        workflow.warnings.append("no file in the workspace matches include/exclude")
    _check_policy(workflow)
    return workflow


def _at_graph(loaded: LoadedSpec, problem: Problem) -> Problem:
    """Problems in the graph reference itself point at the spec's `graph` field."""
    if problem.file:
        return problem
    return loaded.problem(("graph",), problem.message)


def _roles(loaded: LoadedSpec, problems: list[Problem]) -> dict[str, Role]:
    roles = builtin_roles()
    for name, role_spec in loaded.spec.roles.items():
        if name in (PLANNER, AGGREGATE, DEFAULT_KEY, "plan", "START", "END"):
            problems.append(loaded.problem(("roles", name), f"'{name}' is reserved for the workflow itself"))
            continue
        if role_spec.prompt_file:
            prompt = (loaded.base_dir / role_spec.prompt_file).read_text(encoding="utf-8")
        else:
            prompt = role_spec.prompt or ""
        description = role_spec.description or f"custom role ({role_spec.output})"
        roles[name] = Role(name=name, output=role_spec.output, prompt=prompt, description=description)
    return roles


def trusted_hosts() -> set[str]:
    return {h.strip().lower() for h in os.environ.get(TRUSTED_HOSTS_ENV, "").split(",") if h.strip()}


def default_providers() -> dict[str, ProviderConfig]:
    """The providers the catalog defines, before any spec changes them."""
    return {
        name: ProviderConfig(
            name=name,
            kind=e.kind,
            base_url=e.base_url,
            api_key_env=e.api_key_env,
            hosts=e.hosts,
            max_concurrency=e.max_concurrency,
            compact_output=e.compact_output,
        )
        for name, e in load_catalog().providers.items()
    }


def _providers(loaded: LoadedSpec, catalog: Catalog, problems: list[Problem]) -> dict[str, ProviderConfig]:
    providers = default_providers()
    kinds = registry.names()
    for name, override in loaded.spec.providers.items():
        base = providers.get(name)
        kind = override.kind or (base.kind if base else None)
        if kind is None:
            problems.append(loaded.problem(("providers", name), f"new provider needs a kind ({', '.join(kinds)})"))
            continue
        if kind not in kinds:
            hint = close_match(kind, kinds)
            problems.append(loaded.problem(("providers", name, "kind"), f"unknown provider kind '{kind}'{hint}"))
            continue
        config = ProviderConfig(
            name=name,
            kind=kind,
            base_url=override.base_url or (base.base_url if base else None),
            api_key_env=override.api_key_env or (base.api_key_env if base else None),
            hosts=base.hosts if base else (),
            max_concurrency=override.max_concurrency or (base.max_concurrency if base else None),
            max_concurrency_per_model=override.max_concurrency_per_model,
            compact_output=override.compact_output
            if override.compact_output is not None
            else bool(base and base.compact_output),
            structured_output=override.structured_output,
        )
        reason = _untrusted(config, catalog)
        if reason:
            problems.append(loaded.problem(("providers", name, "base_url"), reason))
        providers[name] = config
    return providers


def _untrusted(config: ProviderConfig, catalog: Catalog) -> str | None:
    """An API key goes only to a host the catalog knows for the provider, or one the operator
    trusts outside the spec; a spec from a pull request cannot redirect a key."""
    if not config.api_key_env or config.host is None:
        return None
    known = set(config.hosts) | trusted_hosts()
    entry = catalog.providers.get(config.name)
    if entry and entry.base_url:
        known.add(ProviderConfig(name="", kind="", base_url=entry.base_url).host or "")
    if config.host.lower() in known or config.is_local:
        return None
    return (
        f"the API key in {config.api_key_env} would be sent to {config.host}, which is not a known host "
        f"of provider '{config.name}'; if you trust it, set {TRUSTED_HOSTS_ENV}={config.host} outside the spec"
    )


def _chains(
    loaded: LoadedSpec,
    catalog: Catalog,
    roles: dict[str, Role],
    providers: dict[str, ProviderConfig],
    problems: list[Problem],
) -> tuple[dict[str, list[Route]], dict[str, list[dict[str, str]]]]:
    spec = loaded.spec
    raw = loaded.document.data.get("models") or {}
    model_roles = [name for name in roles if name != AGGREGATE]
    for name in spec.models:
        if name != DEFAULT_KEY and name not in model_roles:
            hint = close_match(name, model_roles)
            problems.append(loaded.problem(("models", name), f"unknown role '{name}'{hint}"))
    default = spec.models.get(DEFAULT_KEY, [EMBEDDED])
    chains: dict[str, list[Route]] = {}
    excluded: dict[str, list[dict[str, str]]] = {}
    for role in model_roles:
        key = role if role in spec.models else DEFAULT_KEY
        refs = spec.models.get(role, default)
        chain: list[Route] = []
        for index, ref in enumerate(refs):
            loc: tuple[str | int, ...] = ("models", key, index) if isinstance(raw.get(key), list) else ("models", key)
            try:
                route = catalog.resolve(ref, set(providers))
            except UnknownModel as exc:
                problem = loaded.problem(loc, str(exc))
                if key in spec.models and problem not in problems:
                    problems.append(problem)
                continue
            if route.provider not in providers:
                problem = loaded.problem(loc, f"provider '{route.provider}' is not configured")
                if problem not in problems:
                    problems.append(problem)
                continue
            reason = refusal(route, catalog.entry_for(route), providers[route.provider], spec.policy)
            if reason:
                excluded.setdefault(role, []).append({"model": route.ref, "reason": reason})
            else:
                chain.append(route)
        chains[role] = chain
    return chains, excluded


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
    """Roles the run cannot do without: the planner, and the spec's task roles (or, without
    tasks, the roles it names in `models`)."""
    spec = workflow.loaded.spec
    return [PLANNER, *sorted({t.role for t in spec.tasks} or set(spec.models) - {PLANNER, DEFAULT_KEY})]


def _check_policy(workflow: Workflow) -> None:
    """Exit 5 when a role the run needs has no allowed model left."""
    needed = needed_roles(workflow)
    empty = [role for role in needed if role in workflow.chains and not workflow.chains[role]]
    if empty:
        lines = []
        for role in empty:
            reasons = "; ".join(f"{e['model']}: {e['reason']}" for e in workflow.excluded.get(role, []))
            lines.append(f"role '{role}' has no allowed model ({reasons or 'no model configured'})")
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
        "graph": workflow.graph.name,
        "workspace": str(workflow.loaded.workspace),
        "files": [f.path for f in workflow.files.files],
        "skipped_files": [{"path": p, "reason": r} for p, r in workflow.files.skipped],
        "tasks": [t.model_dump() for t in spec.tasks],
        "chains": {role: [r.ref for r in chain] for role, chain in workflow.chains.items()},
        "excluded_by_policy": workflow.excluded,
        "warnings": workflow.warnings,
    }
