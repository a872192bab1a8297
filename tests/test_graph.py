"""Graph files: the built-in coding-workflow, its Mermaid shape, and errors in graph files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.errors import SpecError
from orchestrator.graph import builtin_graph_names, compile_graph, load_graph

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
        (GOOD.replace("  plan: {kind: plan}\n", "  plan: {kind: plan}\n  extra: {kind: plan}\n"), "nodes", 3, "plan"),
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
