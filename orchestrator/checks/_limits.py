"""The resource limits of a check (the operator policy's `checks_limits`): how they are put in
force, and which one a stopped check hit.

The per-process limits are rlimits that a tiny launcher (`_launch`) sets before it execs the
check: memory (RLIMIT_DATA, the memory a process allocates, so that runtimes which only reserve
address space, the JVM's or V8's, still start), open files, file size and CPU time. In the sandbox the launcher
runs inside bubblewrap's user namespace, where RLIMIT_NPROC counts the check's own processes
(Linux 5.14 and later). Root is exempt from RLIMIT_NPROC, so where this process may make a pids
cgroup (root, with cgroup v1's pids hierarchy or a v2 root that delegates `pids`), every check
run gets one of its own too, sandboxed or not; a stale one (its orchestrator killed) is emptied
and removed by the next start or `orchestrator gc`. The size of the private /tmp and home is
their tmpfs's (`_mounts`). The launcher also ties the check to this process: it ends when the
orchestrator does, even killed, even while the sandbox is being set up.

A hit is told by what it leaves: the pids cgroup's `max` event, the signal of the CPU and file
size limits (SIGXCPU, SIGXFSZ), else the error the limit causes in the failing check's output
(`MemoryError`, `Too many open files`, ...).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import sys
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from orchestrator.checks._owner import owner_alive, owner_token
from orchestrator.spec.operator import ChecksLimits

MIB = 1024 * 1024
CPU_GRACE_S = 5  # SIGXCPU at the limit, SIGKILL this much later if the check ignores it
CGROUP = Path("/sys/fs/cgroup")
GROUP_PREFIX = "orchestrator-checks-"

# the error each limit causes, as programs print it; the first that matches names the limit
SYMPTOMS = (
    ("processes", re.compile(r"Cannot fork|fork: retry|can't start new thread|Resource temporarily unavailable")),
    ("memory_mb", re.compile(r"MemoryError|Cannot allocate memory|bad_alloc|out of memory|allocation failed", re.I)),
    ("open_files", re.compile(r"Too many open files")),
    ("file_size_mb", re.compile(r"File too large")),
    ("tmp_mb", re.compile(r"No space left on device")),
)
SIGNALS = {int(signal.SIGXCPU): "cpu_s", int(signal.SIGXFSZ): "file_size_mb"}


def launcher(
    argv: Sequence[str], limits: ChecksLimits, *, sandboxed: bool, lifeline: int | None = None, python: str = ""
) -> list[str]:
    """`argv` run under the per-process limits by `python` (this interpreter by default), and
    killed whole once the `lifeline` pipe's write end closes. `sandboxed`: it runs in the
    sandbox's namespaces, where RLIMIT_NPROC counts the check's processes only (outside, every
    process of the user) and where the lifeline may kill every process there is."""
    items = [
        ("DATA", limits.memory_mb * MIB, limits.memory_mb * MIB),
        ("NOFILE", limits.open_files, limits.open_files),
        ("FSIZE", limits.file_size_mb * MIB, limits.file_size_mb * MIB),
        ("CPU", limits.cpu_s, limits.cpu_s + CPU_GRACE_S),
    ]
    if sandboxed:
        items.append(("NPROC", limits.processes, limits.processes))
    spec = ",".join(f"{name}:{soft}:{hard}" for name, soft, hard in items)
    line = f"{lifeline}:{'all' if sandboxed else 'group'}" if lifeline is not None else ""
    return [python or sys.executable, "-I", "-S", "-c", launcher_source(), spec, line, *argv]


def grouped(argv: Sequence[str], group: PidsGroup | None) -> list[str]:
    """`argv` (the sandbox, or the check without one) started inside `group`: a shell writes its
    pid into the group, then execs `argv`."""
    if group is None:
        return list(argv)
    return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(group.path / "cgroup.procs"), *argv]


@cache
def launcher_source() -> str:
    """The launcher's program (`_launch.py`), read once."""
    return (Path(__file__).parent / "_launch.py").read_text(encoding="utf-8")


def described(name: str, limits: ChecksLimits) -> str:
    """`processes = 1024`: a limit and its value, as a check's output and docs name it."""
    return f"{name} = {getattr(limits, name)}"


def limit_hit(exit_code: int | None, output: str, group: PidsGroup | None) -> str | None:
    """The limit a finished check hit (a field of ChecksLimits), or None."""
    if exit_code is None or exit_code == 0:
        return None
    if group is not None and group.hit():
        return "processes"
    for number, name in SIGNALS.items():
        if exit_code in (128 + number, -number):
            return name
    return next((name for name, pattern in SYMPTOMS if pattern.search(output)), None)


class PidsGroup:
    """The pids cgroup of one check run: at most `processes` tasks, processes and threads alike."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def hit(self) -> bool:
        """Whether a fork failed for the group's limit."""
        try:
            events = (self.path / "pids.events").read_text()
        except OSError:
            return False
        return any(line.split()[:1] == ["max"] and line.split()[1:2] != ["0"] for line in events.splitlines())

    def remove(self, *, kill: bool = False) -> None:
        """Remove the group once its processes are gone (they die with the sandbox); with `kill`,
        kill them first (the group of a killed orchestrator)."""
        for _ in range(50):
            if kill:
                with contextlib.suppress(OSError, ValueError):
                    for pid in (self.path / "cgroup.procs").read_text().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)


def pids_group(processes: int) -> PidsGroup | None:
    """A new pids cgroup limited to `processes`, or None where this process may not make one."""
    base = pids_hierarchy()
    if base is None:
        return None
    path = base / f"{GROUP_PREFIX}{owner_token()}-{secrets.token_hex(4)}"
    try:
        path.mkdir()
        (path / "pids.max").write_text(str(processes))
    except OSError:
        with contextlib.suppress(OSError):
            path.rmdir()
        return None
    return PidsGroup(path)


@cache
def pids_hierarchy() -> Path | None:
    """Where pids cgroups can be made here: cgroup v1's pids hierarchy, or the v2 root when it
    delegates the pids controller; None when there is none or it is not ours to write."""
    if sys.platform != "linux":
        return None
    if (CGROUP / "pids" / "cgroup.procs").is_file():
        base = CGROUP / "pids"
    else:
        try:
            delegated = (CGROUP / "cgroup.subtree_control").read_text().split()
        except OSError:
            return None
        if "pids" not in delegated:
            return None
        base = CGROUP
    probe = base / f"{GROUP_PREFIX}{owner_token()}-probe"
    try:
        probe.mkdir()
    except OSError:
        return None
    usable = (probe / "pids.max").is_file()
    with contextlib.suppress(OSError):
        probe.rmdir()
    return base if usable else None


def stale_groups() -> list[Path]:
    """The pids cgroups of checks whose orchestrator process is gone (killed before it could
    remove them)."""
    base = pids_hierarchy()
    if base is None:
        return []
    return [path for path in base.glob(f"{GROUP_PREFIX}*") if not owner_alive(path.name.removeprefix(GROUP_PREFIX))]
