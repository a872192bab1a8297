"""The executor seam and the Ray executor: choosing it (the operator's, never a spec's), placement
rules as node labels, and a real Ray cluster (Ray's own multi-node test cluster: a head and two
worker nodes with different labels) inside a network namespace that has only loopback, so every
Ray connection is on 127.0.0.1 and nothing leaves (tests/servers/ray_scenario.py)."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import PolicyError, SpecError
from orchestrator.policy import Egress
from orchestrator.runtime.executor import choose_executor, needed_labels, run_needs, unplaceable
from orchestrator.spec import load_spec
from orchestrator.spec.operator import PlacementSpec, load_operator
from orchestrator.workflow import prepare_workflow
from tests.process import modules_imported_by, run

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "tests" / "servers" / "ray_scenario.py"

SPEC = """
    version: 1
    name: placed
    goal: Review.
    workspace: ws
    providers: {box: {kind: openai, base_url: "http://127.0.0.1:9/v1"}}   # this machine: confidential is fine
    tasks:
      - {id: open, role: debug, instruction: Debug app.py., files: [app.py]}
      - {id: util, role: debug, instruction: Debug lib/util.py., files: [lib/util.py]}
    models: {planner: box/p, debug: box/d}
    policy: {files: {"lib/**": confidential}}
"""


def workflow_with(write_spec: Callable[..., Path], tmp_path: Path, policy: str) -> Any:
    path = tmp_path / "operator.yaml"
    path.write_text(policy)
    return prepare_workflow(load_spec(write_spec(SPEC)), load_operator(path, False, None))


def test_the_executor_is_the_operators_choice(
    write_spec: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    workflow = workflow_with(write_spec, tmp_path, "data_class: internal\n")
    assert choose_executor(None, workflow).kind == "local"
    assert choose_executor("ray:10.0.0.5:6379", workflow).address == "10.0.0.5:6379"
    with pytest.raises(SpecError, match="no cluster address"):
        choose_executor("ray", workflow)
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    assert choose_executor("ray", workflow).address is None  # Ray reads RAY_ADDRESS itself
    with pytest.raises(SpecError, match="unknown executor 'dask'"):
        choose_executor("dask", workflow)
    chosen = workflow_with(write_spec, tmp_path, "executor: {kind: ray, address: '127.0.0.1:1'}\n")
    choice = choose_executor(None, chosen)
    assert (choice.kind, choice.address) == ("ray", "127.0.0.1:1") and "operator policy" in choice.source
    # a spec cannot choose it: `executor` and `placement` are operator fields only
    with pytest.raises(SpecError, match="executor"):
        load_spec(write_spec(SPEC + "    executor: {kind: ray}\n", name="hostile.yaml"))


def test_placement_rules_become_the_labels_a_subtask_needs() -> None:
    placement = PlacementSpec.model_validate(
        {"confidential": {"zone": "onprem"}, "countries": {"FR": {"region": "eu-west"}, "CN": {"zone": "cloud"}}}
    )
    assert needed_labels(placement, "confidential", ["FR"]) == {"zone": "onprem", "region": "eu-west"}
    assert needed_labels(placement, "internal", ["US"]) == {}
    assert needed_labels(None, "confidential", ["FR"]) == {}
    with pytest.raises(PolicyError, match=r"placement.confidential and placement.countries.CN ask label zone"):
        needed_labels(placement, "confidential", ["CN"])


def test_a_rule_no_node_satisfies_is_named_before_any_call(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    workflow = workflow_with(write_spec, tmp_path, "placement:\n  confidential: {zone: onprem}\n")
    needs = run_needs(workflow)
    assert needs == {"task util (debug) (placement.confidential)": {"zone": "onprem"}}  # the spec's tasks, exactly
    refused = unplaceable(needs, [{"zone": "cloud"}, {}], "operator policy P:2")
    assert refused == [
        "task util (debug) (placement.confidential) needs a node with the labels {'zone': 'onprem'} "
        "(operator policy P:2): no node of the Ray cluster has them"
    ]
    assert unplaceable(needs, [{"zone": "onprem", "gpu": "a100"}], "P") == []


def test_traffic_a_node_reports_is_the_runs_and_names_the_node() -> None:
    egress = Egress()
    egress._traffic("127.0.0.1:8", "ollama/q", "data_class internal; this machine")
    egress.merge(
        {
            "hosts": [
                {
                    "host": "127.0.0.1:8",
                    "models": ["ollama/r"],
                    "rules": ["r"],
                    "requests": 2,
                    "bytes_sent": 10,
                    "bytes_received": 20,
                }
            ],
            "in_process": [],
        },
        "node-a",
    )
    (host,) = egress.report()["hosts"]
    assert host["models"] == ["ollama/q", "ollama/r"] and host["nodes"] == ["node-a"] and host["requests"] == 2


def test_the_cli_does_not_import_ray_unless_it_is_the_executor() -> None:
    assert not any(m == "ray" or m.startswith("ray.") for m in modules_imported_by(["--help"]))


@pytest.mark.integration
@pytest.mark.needs(
    "" if shutil.which("unshare") and shutil.which("ip") else "needs unshare (util-linux) and ip (iproute2)"
)
def test_a_ray_cluster_places_work_by_policy_and_loses_nothing_when_a_node_dies(tmp_path: Path) -> None:
    command = f"ip link set lo up && exec {sys.executable} {SCENARIO} {tmp_path}"
    done = run(["unshare", "-n", "sh", "-c", command], timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads((tmp_path / "scenario.json").read_text())
    nodes = report["nodes"]

    # 1. a rule no node satisfies: exit 5 before any call, naming the rule
    refused = report["unplaceable"]
    assert refused["exit_code"] == 5 and refused["requests"] == 0
    assert "task secret (architecture_review) (placement.confidential)" in refused["error"]
    assert "{'zone': 'mars'}" in refused["error"] and "unplaceable-policy.yaml:2" in refused["error"]

    # 2. placement, read from result.json: the confidential subtask on the on-premises node, the
    # French model's subtask in eu-west; the egress report names the nodes that sent
    placed = report["placement"]
    assert placed["exit_code"] == 0
    where = {s["id"]: s["worker"] for s in placed["result"]["subtasks"]}
    assert where["secret"] == {"node_id": nodes["onprem"], "labels": {"zone": "onprem"}}
    assert where["french"]["node_id"] == nodes["cloud"] and where["french"]["labels"]["region"] == "eu-west"
    assert {w["node_id"] for w in where.values()} == {nodes["onprem"], nodes["cloud"]}  # spread over both
    assert set(placed["requests"].values()) == {1}  # every subtask asked its model once
    (host,) = placed["result"]["egress"]["hosts"]
    assert set(host["nodes"]) == {nodes["onprem"], nodes["cloud"]}

    # 3. the cloud node killed mid-run: its subtasks went to the other node (a worker_lost hop);
    # every subtask is in the result exactly once and ok; those that had finished never ran again
    killed = report["kill"]
    assert killed["exit_code"] == 0 and killed["killed"]["in_flight"] >= 4
    subtasks = killed["result"]["subtasks"]
    assert sorted(s["id"] for s in subtasks) == ["d1", "d2", "d3", "d4", "french", "secret"]
    assert all(s["status"] == "ok" and s["worker"]["node_id"] == nodes["onprem"] for s in subtasks)
    moved = [s for s in subtasks if s["fallbacks"]]
    assert moved and all(
        [h["error_kind"] for h in s["fallbacks"]] == ["worker_lost"] and nodes["cloud"] in s["fallbacks"][0]["model"]
        for s in moved
    )
    markers = {"secret": "SECRET-TASK", "french": "FRENCH-TASK", "d1": "TASK-D1", "d2": "TASK-D2"}
    markers |= {"d3": "TASK-D3", "d4": "TASK-D4"}
    for subtask in subtasks:  # server-side: once, or twice for a subtask the dead node was answering
        assert killed["requests"][markers[subtask["id"]]] == 1 + len(subtask["fallbacks"]), subtask["id"]


def test_a_node_drains_what_it_counted_since_it_last_reported() -> None:
    egress = Egress()
    traffic = egress._traffic("127.0.0.1:8", "ollama/q", "r")
    egress._count(traffic, sent=5, received=7, request=True)
    (first,) = egress.drain()["hosts"]
    egress._count(traffic, sent=1, received=2, request=True)
    (second,) = egress.drain()["hosts"]
    assert (first["requests"], first["bytes_sent"], first["bytes_received"]) == (1, 5, 7)
    assert (second["requests"], second["bytes_sent"], second["bytes_received"]) == (1, 1, 2)
    assert egress.drain()["hosts"] == []  # nothing new
    assert egress.report()["hosts"][0]["requests"] == 2  # the node's own report still has it all
