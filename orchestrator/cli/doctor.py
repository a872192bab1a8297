"""`orchestrator doctor`: is this machine ready? Python, the embedded model's llama.cpp build (run
for real), the checks' sandbox (a sandboxed `true`), Chromium, the installed extras, the
providers' keys (names only), the operator policy in force and where it comes from, the data
folders and their free space; with --online, the configured hosts and Ollama's pulled tags.
Each problem comes with its fix. Exit 0 when nothing blocks a run, 1 otherwise."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click

from orchestrator.cli._common import echo, policy_option

MARK = {"ok": "ok", "info": "info", "warn": "WARN", "fail": "FAIL"}
AREAS = ("python", "llama.cpp", "sandbox", "chromium", "extras", "keys", "policy", "data")


@click.command()
@click.option("--online", is_flag=True, help="also ask the configured hosts (Ollama: which catalog tags are pulled)")
@click.option("--timeout", default=5.0, show_default=True, help="with --online: seconds per host")
@click.option("--json", "as_json", is_flag=True, help="the findings as JSON")
@policy_option
@click.option("--trusted/--untrusted", "trusted", default=None, help="as `orchestrator run` takes them")
@click.option(
    "--only",
    type=click.Choice(AREAS),
    multiple=True,
    help="check only this area (repeatable; e.g. --only sandbox skips the seconds of the llama.cpp self-test)",
)
def doctor(
    online: bool, timeout: float, as_json: bool, policy: Path | None, trusted: bool | None, only: tuple[str, ...]
) -> None:
    """Check that this machine can run workflows, and say how to fix what cannot.

    Without --online nothing leaves the machine. Exits 1 when something blocks a run (a policy
    file that does not load, a llama.cpp build that cannot run here, a required sandbox that is
    missing, a data folder that cannot be written), else 0."""
    from orchestrator.cli import _diagnose as d

    policy_found, operator_sandbox = d.policy_finding(policy, trusted)
    every: dict[str, Callable[[], d.Finding]] = {
        "python": d.python_finding,
        "llama.cpp": d.llama_finding,
        "sandbox": lambda: d.sandbox_finding(operator_sandbox),
        "chromium": d.chromium_finding,
        "extras": d.extras_finding,
        "keys": d.keys_finding,
        "policy": lambda: policy_found,
        "data": lambda: d.data_finding(Path.cwd()),
    }
    checks = [every[area] for area in AREAS if not only or area in only]
    # the llama.cpp self-test takes seconds: the other checks run meanwhile
    with ThreadPoolExecutor(max_workers=4) as pool:
        findings = list(pool.map(lambda check: check(), checks))
    if online:
        from orchestrator.cli._diagnose_online import host_findings

        findings += host_findings(timeout)
    blocked = [f for f in findings if f.blocks]
    if as_json:
        report = {
            "ok": not blocked,
            "online": online,
            "findings": [
                {"area": f.area, "status": f.status, "summary": f.summary, "fix": f.fix, "details": f.details}
                for f in findings
            ],
        }
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        width = max(len(f.area) for f in findings)
        for f in findings:
            echo(f"{MARK[f.status]:<4}  {f.area:<{width}}  {f.summary}")
            if f.fix:
                label = "fix" if f.status in ("warn", "fail") else "hint"
                echo(f"{'':<4}  {'':<{width}}  {label}: {f.fix}")
        if blocked:
            echo(f"{len(blocked)} problem(s) block a run: {', '.join(f.area for f in blocked)}", err=True)
        else:
            checked = f" in what was checked ({', '.join(only)})" if only else ""
            echo(f"nothing blocks a run{checked}" + ("" if online else " (--online also asks the configured hosts)"))
    if blocked:
        # 1, as a quality gate: the check ran and found something that stops runs
        sys.exit(1)


COMMANDS: list[click.Command] = [doctor]
