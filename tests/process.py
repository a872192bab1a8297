"""Running the real `orchestrator` command in a subprocess, as users and CI do."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def orchestrator(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`python -m orchestrator ARGS` with CI=1 (plain progress lines), output captured."""
    argv = [sys.executable, "-m", "orchestrator", *map(str, args)]
    return run(argv, env={**os.environ, "CI": "1", **(env or {})}, cwd=cwd, timeout=timeout)


def run(
    argv: Sequence[str | Path],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run` (text, output captured) in a process group of its own: at its timeout,
    or when the test stops, the whole group is killed (the command's model worker, its checks,
    whatever it started), not only the command, and TimeoutExpired is raised as usual."""
    process = subprocess.Popen(
        [str(a) for a in argv],
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process.pid)
        out, err = process.communicate()
        raise subprocess.TimeoutExpired(process.args, timeout, out, err) from None
    finally:
        kill_group(process.pid)
        process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def kill_group(pid: int) -> None:
    """SIGKILL to a process group (nothing when it is gone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


# what a replay's result.json may differ in from the recorded run's (README, "Record and replay"):
# the fields that measure time, and the egress report (a replay contacts nothing, by design)
REPLAY_VOLATILE = frozenset(
    {"run_id", "started_at", "duration_ms", "latency_ms", "waited_s", "ms", "egress", "started_ms"}
    | {"queued_s", "served_s"}  # where a call's time went: waiting for its model, being served
    | {"timing", "clock_origin"}  # when each call ran, on the run's clock
    | {"replayed"}  # verification.replayed says the check results came from the recording
    | {"signature"}  # signed with the run id and this machine's key
)


def comparable(value: Any, also: frozenset[str] = frozenset(), drop_null: bool = False) -> Any:
    """A result document without the fields a replay may change (and `also`); with `drop_null`
    an absent key equals null."""
    volatile = REPLAY_VOLATILE | also
    if isinstance(value, dict):
        return {
            k: comparable(v, also, drop_null)
            for k, v in value.items()
            if k not in volatile and not (drop_null and v is None)
        }
    if isinstance(value, list):
        return [comparable(v, also, drop_null) for v in value]
    return value


def modules_imported_by(argv: list[str], env: dict[str, str] | None = None) -> set[str]:
    """Every module a CLI command imported, run in a fresh interpreter (CI=1)."""
    code = (
        "import sys, json\n"
        "from orchestrator.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = run([sys.executable, "-c", code], timeout=300, env={**os.environ, "CI": "1", **(env or {})})
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))
