"""`orchestrator validate`, `models`, `graph show` and `schema`: everything that calls no model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from orchestrator.cli._common import echo, operator, prepare, table, trust_options
from orchestrator.errors import ExitStatus


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE")
@click.option("--json", "as_json", is_flag=True, help="print the resolved workflow as JSON")
@trust_options
def validate(
    spec: str,
    overrides: tuple[str, ...],
    as_json: bool,
    policy: Path | None,
    trusted: bool | None,
    workspace: Path | None,
) -> None:
    """Check SPEC, its graph, models and policy under the operator's policy. Calls no model."""
    from orchestrator.workflow import describe

    workflow = prepare(spec, overrides, operator(policy, trusted, workspace))
    info = describe(workflow)
    if as_json:
        click.echo(json.dumps(info, indent=2, ensure_ascii=False))
        return
    echo(f"ok: {spec} is valid (graph {info['graph']}, {len(info['files'])} files)")
    for role, chain in info["chains"].items():
        echo(f"  {role}: {' -> '.join(chain) or '(no allowed model)'}")
        for ref, pin in info["pinned"].get(role, {}).items():
            endpoint = f" at {pin['base_url']}" if pin["base_url"] else ""
            echo(f"    pinned {ref}: {json.dumps(pin['request'], sort_keys=True)}{endpoint} ({pin['rule']})")
    for owner, removed in info["excluded_by_policy"].items():
        for item in removed:
            echo(f"  removed from {owner}: {item['model']} ({item['reason']})")
    if info["policy"]:
        echo("effective policy:")
        for line in info["policy"]:
            echo(f"  {line['field']}: {json.dumps(line['value'])}  ({line['source']})")
    plan = info["verify"]
    if plan:
        where = "bubblewrap sandbox" if plan["runner"] == "bubblewrap" else f"no sandbox: {plan['reason']}"
        echo(f"  patches judged by {', '.join(plan['checks'])} (sandbox {plan['mode']}, {where})")
        limits = ", ".join(f"{name} {value}" for name, value in plan["limits"].items())
        unbounded = f" (cannot hold here: {', '.join(plan['unbounded'])})" if plan["unbounded"] else ""
        echo(f"  check limits: {limits}{unbounded}")
    for warning in workflow.warnings:
        echo(f"warning: {warning}", err=True)
    if plan and plan["mode"] == "required" and plan["runner"] != "bubblewrap":
        echo("warning: verify.sandbox is required and there is no sandbox: a run stops (exit 2)", err=True)


@click.command()
@click.option("--country", help="ISO 3166 code, e.g. AE")
@click.option("--strength", help="e.g. coding, reasoning, arabic")
@click.option("--open-weights", is_flag=True, help="only models with open weights")
@click.option("--provider", help="only models with a route on this provider")
@click.option("--check", is_flag=True, help="ask each configured provider what it serves")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False), help="with --check: check this spec's roles")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="with --spec: override a field")
@click.option("--timeout", default=5.0, show_default=True, help="seconds per provider for --check")
@click.option("--json", "as_json", is_flag=True)
def models(
    country: str | None,
    strength: str | None,
    open_weights: bool,
    provider: str | None,
    check: bool,
    spec_path: str | None,
    overrides: tuple[str, ...],
    timeout: float,
    as_json: bool,
) -> None:
    """List the model catalog, or with --check, what the configured providers serve.

    --check exits 3 when a role of --spec has no reachable model."""
    if check or spec_path:
        _check_models(spec_path, overrides, timeout, as_json)
        return
    from orchestrator.catalog import load_catalog

    entries = load_catalog().filter(
        country=country, strength=strength, open_weights=open_weights or None, provider=provider
    )
    if as_json:
        click.echo(json.dumps([e.model_dump(mode="json") for e in entries], indent=2))
        return
    rows = [
        (
            e.id,
            e.country,
            e.lab,
            "yes" if e.open_weights else "no",
            ",".join(e.strengths),
            f"{e.context_window // 1024}k" if e.context_window else "?",
            " ".join(f"{r.provider}/{r.model}" for r in e.routes) or "(no route)",
        )
        for e in entries
    ]
    table(("id", "country", "lab", "open", "strengths", "context", "routes"), rows)
    if not rows:
        click.echo("(no model matches)", err=True)


def _check_models(spec_path: str | None, overrides: tuple[str, ...], timeout: float, as_json: bool) -> None:
    from orchestrator.models.probe import (
        default_providers_to_check,
        probe_chains,
        probe_providers,
        unreachable_roles,
    )

    if spec_path:
        from orchestrator.workflow import needed_roles

        workflow = prepare(spec_path, overrides)
        chains = workflow.chains.base_chains()
        used = {route.provider for chain in chains.values() for route in chain}
        providers = {name: workflow.providers[name] for name in sorted(used)}
    else:
        from orchestrator.workflow import default_providers

        providers = default_providers_to_check(default_providers())
    statuses = probe_providers(providers, timeout)
    rows = probe_chains(chains, workflow.providers, statuses) if spec_path else []
    missing = unreachable_roles(rows, needed_roles(workflow)) if spec_path else []
    if as_json:
        report = {
            "providers": [vars(s) for s in statuses.values()],
            "roles": rows,
            "unreachable_roles": missing,
        }
        click.echo(json.dumps(report, indent=2))
    else:
        table(
            ("provider", "kind", "endpoint", "status"),
            [(s.name, s.kind, s.endpoint, ("ok: " if s.ok else "FAILED: ") + s.detail) for s in statuses.values()],
        )
        if rows:
            click.echo("")
            table(
                ("role", "model", "reachable", "structured output", "detail"),
                [
                    (r["role"], r["model"], "yes" if r["reachable"] else "no", r["structured"], r["detail"])
                    for r in rows
                ],
            )
    if missing:
        click.echo(f"error: no reachable model for role(s): {', '.join(missing)}", err=True)
        sys.exit(ExitStatus.PROVIDER_FAILURE)


@click.command()
@click.option("--graph", "which", flag_value="graph", help="the graph file format instead of the spec")
@click.option("--result", "which", flag_value="result", help="result.json (schema_version 1) instead of the spec")
@click.option("--spec", "which", flag_value="spec", default=True, hidden=True)
def schema(which: str) -> None:
    """Print the JSON Schema of the spec file (for editors), a graph file or result.json."""
    if which == "graph":
        from orchestrator.spec.graphfile import GraphFile

        click.echo(json.dumps(GraphFile.model_json_schema(), indent=2))
        return
    if which == "result":
        from orchestrator.outputs import result_json_schema

        click.echo(json.dumps(result_json_schema(), indent=2))
        return
    from orchestrator.spec import spec_json_schema

    click.echo(json.dumps(spec_json_schema(), indent=2))


@click.group()
def graph() -> None:
    """Inspect graphs."""


@graph.command("show")
@click.argument("name_or_path")
def graph_show(name_or_path: str) -> None:
    """Print the Mermaid text of a built-in graph, a graph file, or a Python graph (pkg.module:build)."""
    from orchestrator.engine import GraphKit, build_python_graph, compile_graph, load_python_graph
    from orchestrator.spec import builtin_roles, worker_roles
    from orchestrator.spec.graphfile import is_python_graph, load_graph

    roles = sorted(worker_roles(builtin_roles()))
    if is_python_graph(name_or_path):
        kit = GraphKit(worker_roles=roles, resolve_models=lambda name, role, refs: None)
        built = build_python_graph(name_or_path, load_python_graph(name_or_path, Path.cwd()), kit)
        compiled = built.compile() if hasattr(built, "add_node") else built
    else:
        compiled = compile_graph(load_graph(name_or_path, Path.cwd()), roles).compile()
    click.echo(compiled.get_graph().draw_mermaid())


COMMANDS = (validate, models, schema, graph)
