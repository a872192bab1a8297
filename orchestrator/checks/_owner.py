"""Which process owns a scratch folder or a pids cgroup, and whether it is still there: what the
next start (or `orchestrator gc`) removes is what a killed process left behind, never what a
running one uses. A process is its pid and its start time (so that a reused pid is not taken
for the process that died)."""

from __future__ import annotations

import os
from pathlib import Path


def owner_token(pid: int | None = None) -> str:
    """`PID-START` for this process (or `pid`): START is its start time in clock ticks since boot
    on Linux, 0 where /proc does not say."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}-{_started(pid) or 0}"


def owner_alive(token: str) -> bool:
    """Whether the process of a token (`PID-START`, maybe followed by `-MORE`) is still running
    (a token that cannot be read: yes)."""
    pid, started = [*token.strip().split("-"), ""][:2]
    if not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = _started(int(pid))
    return not (started.isdigit() and int(started) and now and now != int(started))


def _started(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: count from the last ')'
    fields = stat.rpartition(")")[2].split()
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else None
