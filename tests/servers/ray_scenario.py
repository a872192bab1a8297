"""Runs inside a network namespace with only loopback (`unshare -n`, `ip link set lo up`), so
every Ray connection is on 127.0.0.1 and nothing leaves: a real Ray cluster started with Ray's
own multi-node test cluster (a head and two worker nodes with different labels), a loopback model
server speaking the Ollama API, and three runs of one spec on the Ray executor:

1. a placement rule no node satisfies: refused before any call (exit 5);
2. placement: the confidential subtask on the on-premises node, the French model's in eu-west;
3. a worker node killed while it runs subtasks: they go to the other node, nothing is lost.

    python tests/servers/ray_scenario.py OUT_DIR

writes OUT_DIR/scenario.json (what the test asserts) and the runs' outputs.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SPEC = """
version: 1
name: ray-placement
goal: Review and improve the inventory code.
workspace: ws
graph: coding-workflow
providers: {ollama: {base_url: "URL"}}
tasks:
  - {id: secret, role: architecture_review, instruction: "Review secret.py (SECRET-TASK).", files: [secret.py]}
  - {id: french, role: refactor, instruction: "Refactor a.py (FRENCH-TASK).", files: [a.py]}
  - {id: d1, role: debug, instruction: "Debug a.py (TASK-D1).", files: [a.py]}
  - {id: d2, role: debug, instruction: "Debug b.py (TASK-D2).", files: [b.py]}
  - {id: d3, role: debug, instruction: "Debug a.py again (TASK-D3).", files: [a.py]}
  - {id: d4, role: debug, instruction: "Debug b.py again (TASK-D4).", files: [b.py]}
models:
  planner: ollama/qwen3-coder:30b
  architecture_review: ollama/qwen3-coder:30b
  refactor: ollama/mistral-small:24b
  debug: ollama/deepseek-r1:14b
roles:
  architecture_review: {tools: []}
  refactor: {tools: []}
  debug: {tools: []}
policy:
  files: {"secret.py": confidential}
limits: {concurrency: 8, retries: 0}
fail_on: none
"""
POLICY = """
placement:
  confidential: {zone: ZONE}
"""
FRENCH = "  countries: {FR: {region: eu-west}}\n"
MARKERS = ["SECRET-TASK", "FRENCH-TASK", "TASK-D1", "TASK-D2", "TASK-D3", "TASK-D4"]


def requests_per_task(bodies: list[str]) -> dict[str, int]:
    return {marker: sum(marker in body for body in bodies) for marker in MARKERS}


def main(out: Path) -> None:
    import ray
    from ray.cluster_utils import Cluster

    from orchestrator import RunOptions, run_workflow
    from orchestrator.errors import OrchestratorError
    from orchestrator.spec import load_spec
    from orchestrator.spec.operator import load_operator
    from orchestrator.workflow import prepare_workflow
    from tests.servers.model_server import ModelServer

    fast_failure = {"health_check_period_ms": 500, "health_check_failure_threshold": 4}
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False, "_system_config": fast_failure},
    )
    onprem = cluster.add_node(num_cpus=2, labels={"zone": "onprem"})
    cloud = cluster.add_node(num_cpus=2, labels={"zone": "cloud", "region": "eu-west"})
    cluster.wait_for_nodes()
    report: dict[str, Any] = {
        "nodes": {"onprem": onprem.node_id, "cloud": cloud.node_id},
        "address": cluster.address,
    }
    models = {"qwen3-coder:30b": "canned", "mistral-small:24b": "canned", "deepseek-r1:14b": "canned"}
    try:
        with ModelServer(models) as server:
            work = out / "project"
            (work / "ws").mkdir(parents=True)
            (work / "ws" / "a.py").write_text("def add(a, b):\n    return a - b\n")
            (work / "ws" / "b.py").write_text("def sub(a, b):\n    return a + b\n")
            (work / "ws" / "secret.py").write_text("KEY_ROTATION_DAYS = 1\n")
            spec = work / "spec.yaml"
            spec.write_text(SPEC.replace("URL", server.url))

            def run(name: str, zone: str, french: bool = True) -> dict[str, Any]:
                policy = work / f"{name}-policy.yaml"
                policy.write_text(POLICY.replace("ZONE", zone) + (FRENCH if french else ""))
                workflow = prepare_workflow(load_spec(spec), load_operator(policy, False, None))
                options = RunOptions(output_dir=out / name, checkpoint="memory", executor=f"ray:{cluster.address}")
                try:
                    outcome = run_workflow(workflow, options)
                except OrchestratorError as exc:
                    return {"exit_code": int(exc.exit_code), "error": str(exc)}
                return {"exit_code": int(outcome.exit_code), "result": outcome.result.model_dump(mode="json")}

            report["unplaceable"] = run("unplaceable", "mars")
            report["unplaceable"]["requests"] = len(server.state.bodies)

            report["placement"] = run("placement", "onprem")
            report["placement"]["requests"] = requests_per_task(server.state.bodies)

            # a node dies while it answers: every answer is slow, and the cloud node is removed once
            # the server is answering subtasks on both nodes (the French rule is left out: its
            # subtask could run nowhere else)
            server.state.bodies.clear()
            server.state.delay_s = 3.0
            killed: dict[str, Any] = {}

            def kill_when_busy() -> None:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    if server.state.in_flight >= 4:
                        time.sleep(0.5)
                        killed["in_flight"] = server.state.in_flight
                        cluster.remove_node(cloud, allow_graceful=False)
                        killed["at"] = time.time()
                        return
                    time.sleep(0.05)

            killer = threading.Thread(target=kill_when_busy, daemon=True)
            killer.start()
            report["kill"] = run("kill", "onprem", french=False)  # every subtask but the secret one may go anywhere
            killer.join(timeout=5)
            report["kill"]["killed"] = killed
            report["kill"]["requests"] = requests_per_task(server.state.bodies)
    finally:
        ray.shutdown()
        cluster.shutdown()
    (out / "scenario.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
