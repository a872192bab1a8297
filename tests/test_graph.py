"""Graph files: the built-in coding-workflow, its Mermaid shape, and errors in graph files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.engine import compile_graph
from orchestrator.errors import SpecError
from orchestrator.spec.graphfile import builtin_graph_names, load_graph

ROLES = ["arabic_docs", "architecture_review", "debug", "refactor"]


def test_coding_workflow_is_built_in_and_compiles() -> None:
    assert "coding-workflow" in builtin_graph_names()
    definition = load_graph("coding-workflow", Path.cwd())
    compiled = compile_graph(definition, ROLES).compile()
    assert set(compiled.get_graph().nodes) == {"__start__", "__end__", "plan", "aggregate", *ROLES}


def test_coding_workflow_mermaid_shape() -> None:
    compiled = compile_graph(load_graph("coding-workflow", Path.cwd()), ROLES).compile()
    mermaid = compiled.get_graph().draw_mermaid()
    edges = {line.strip().rstrip(";") for line in mermaid.splitlines() if "->" in line}
    expected = {"__start__ --> plan", "aggregate --> __end__"}
    expected |= {f"plan -.-> {role}" for role in ROLES}  # conditional fan-out (Send)
    expected |= {f"{role} --> aggregate" for role in ROLES}
    assert edges == expected


def test_custom_role_gets_its_own_node() -> None:
    compiled = compile_graph(load_graph("coding-workflow", Path.cwd()), [*ROLES, "security_review"]).compile()
    assert "security_review" in compiled.get_graph().nodes


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "g.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


GOOD = """
version: 1
name: mine
nodes:
  plan: {kind: plan}
  work: {kind: fanout}
  aggregate: {kind: aggregate}
edges:
  - [START, plan]
  - [plan, work]
  - [work, aggregate]
  - [aggregate, END]
"""


def test_a_graph_file_next_to_the_spec_loads(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    assert load_graph("g.yaml", tmp_path).name == "mine"


@pytest.mark.parametrize(
    ("text", "field", "line", "fragment"),
    [
        (GOOD.replace("[work, aggregate]", "[work, aggregat]"), "edges.2.1", 10, "did you mean 'aggregate'"),
        (GOOD.replace("kind: fanout", "kind: fan-out"), "nodes.work.kind", 5, "fanout"),
        (GOOD.replace("  - [plan, work]\n", ""), "nodes.work", 5, "unreachable"),
        (
            GOOD.replace("  plan: {kind: plan}\n", "  plan: {kind: plan}\n  extra: {kind: plan}\n"),
            "nodes.extra",
            5,
            "at most one 'plan'",
        ),
        (GOOD.replace("edges:", "edgez:"), "edgez", 7, "unknown field"),
    ],
)
def test_bad_graph_files_name_the_field_and_line(
    tmp_path: Path, text: str, field: str, line: int, fragment: str
) -> None:
    write(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        load_graph("g.yaml", tmp_path)
    problems = {(p.field, p.line): p.message for p in caught.value.problems}
    assert (field, line) in problems, problems
    assert fragment in problems[(field, line)]
    assert all(p.file.endswith("g.yaml") for p in caught.value.problems)


def test_unknown_graph_name_suggests_a_built_in() -> None:
    with pytest.raises(SpecError) as caught:
        load_graph("coding-workflw", Path.cwd())
    assert "did you mean 'coding-workflow'" in str(caught.value)


# ---------------------------------------------------------------- the shipped graphs


SHIPPED_EDGES = {
    "review-only": {"__start__ --> review", "review --> aggregate", "aggregate --> __end__"},
    "architect-editor": {
        "__start__ --> architect",
        "architect --> editor",
        "editor --> aggregate",
        "aggregate --> __end__",
    },
    "debug-loop": {
        "__start__ --> diagnose",
        "diagnose --> fix",
        "fix -. &nbsp;patches.valid == 0 or checks.failing > 0&nbsp; .-> diagnose",
        "fix -. &nbsp;else&nbsp; .-> aggregate",
        "aggregate --> __end__",
    },
    "ensemble-review": {
        "__start__ -.-> review",  # one Send per proposer
        "review --> merge",
        "merge --> aggregate",
        "aggregate --> __end__",
    },
}


def test_the_shipped_graphs_are_the_documented_ones() -> None:
    assert set(builtin_graph_names()) == {"coding-workflow", *SHIPPED_EDGES}


@pytest.mark.parametrize("name", sorted(SHIPPED_EDGES))
def test_shipped_graph_mermaid_snapshot(name: str) -> None:
    compiled = compile_graph(load_graph(name, Path.cwd()), ROLES).compile()
    mermaid = compiled.get_graph().draw_mermaid()
    assert {line.strip().rstrip(";") for line in mermaid.splitlines() if "->" in line} == SHIPPED_EDGES[name]


# ---------------------------------------------------------------- more bad graphs


LOOP = """
version: 1
name: loop
nodes:
  a: {kind: role, role: debug, max_iterations: 2}
  b: {kind: role, role: refactor}
  aggregate: {kind: aggregate}
edges:
  - [START, a]
  - [a, b]
  - {from: b, to: a, when: "patches.valid == 0"}
  - {from: b, to: aggregate, when: else}
  - [aggregate, END]
"""


def test_a_bounded_loop_loads(tmp_path: Path) -> None:
    write(tmp_path, LOOP)
    assert load_graph("g.yaml", tmp_path).graph.nodes["a"].max_iterations == 2


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        (LOOP.replace(", max_iterations: 2", ""), "nodes.a", "unbounded"),
        (
            LOOP.replace('{from: b, to: a, when: "patches.valid == 0"}', "[b, a]").replace(
                "  - {from: b, to: aggregate, when: else}\n", ""
            ),
            "nodes.a",
            "unbounded",
        ),
        (LOOP.replace("patches.valid == 0", "patches.vaild == 0"), "edges.2.when", "unknown fact"),
        (LOOP.replace("patches.valid == 0", "findings.max_severity >= severe"), "edges.2.when", "not a severity"),
        (LOOP.replace("patches.valid == 0", "status > ok"), "edges.2.when", "== or !="),
        (LOOP.replace("when: else", 'when: "status == ok"'), "edges.2.when", "one 'else'"),
        (LOOP.replace("kind: role, role: refactor", "kind: role"), "nodes.b", "needs a role"),
        (LOOP.replace("  b: {kind: role, role: refactor}", "  b: {kind: merge, of: a}"), "nodes.b.of", "ensemble"),
        (LOOP.replace("  aggregate: {kind: aggregate}", "  aggregate: {kind: fanout}"), "nodes.aggregate", "plan"),
        (LOOP.replace("  - [aggregate, END]\n", ""), "nodes.aggregate", "dead end"),
    ],
)
def test_bad_graphs_name_the_field(tmp_path: Path, text: str, field: str, fragment: str) -> None:
    write(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        load_graph("g.yaml", tmp_path)
    fields = {p.field: p.message for p in caught.value.problems}
    matching = [message for name, message in fields.items() if name.startswith(field)]
    assert matching, fields
    assert any(fragment in message for message in matching), fields
    assert all(p.line is not None for p in caught.value.problems)
