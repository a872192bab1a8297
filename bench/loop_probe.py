"""How long the event loop is blocked: the time its callbacks spend off the CPU without being
preempted (waiting on a disk flush, a lock, a sleep), summed over every callback the loop runs.

Each callback (asyncio's `Handle._run`, through which every task step and timer passes) is timed
with the wall clock, the loop thread's CPU clock and its run-queue wait (the second field of
/proc/thread-self/schedstat: nanoseconds runnable but waiting for a CPU). Wall time that is neither
CPU nor run-queue wait is time the thread slept inside the callback: blocked, when the thread gave
up the CPU itself in it (a voluntary context switch: a flush, a lock, a full pipe, the GIL) and
beyond 10 us (the clock reads themselves leave about 1 us a callback; a virtual machine's own
preemption shows as wall time too, but involves no voluntary switch). CPU work on the loop is not
counted here (it is in the CPU figures), nor is being preempted on a busy machine, so the figure
holds on a shared machine. Costs about 2 us a callback, so it is measured in a run of its own."""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

SCHEDSTAT = "/proc/thread-self/schedstat"
FLOOR_NS = 10_000


@dataclass
class Blocked:
    seconds: float = 0.0
    callbacks: int = 0
    longest_s: float = 0.0


def available() -> bool:
    return os.path.exists(SCHEDSTAT)


@contextmanager
def blocked_time() -> Iterator[Blocked]:
    """Within the block, every asyncio callback on this thread is measured into the result."""
    found = Blocked()
    # bound to this thread (the loop's); left open: the callback that leaves this block is still running
    fd = os.open(SCHEDSTAT, os.O_RDONLY)
    original = asyncio.events.Handle._run

    def waited() -> int:
        return int(os.pread(fd, 64, 0).split()[1])

    def timed(handle: asyncio.Handle) -> None:
        switches = resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw
        started, cpu, wait = time.perf_counter_ns(), time.thread_time_ns(), waited()
        try:
            original(handle)
        finally:
            wait = waited() - wait
            cpu = time.thread_time_ns() - cpu
            slept = time.perf_counter_ns() - started - cpu - wait
            # it gave up the CPU itself (a preempted thread's switches are involuntary)
            if slept > FLOOR_NS and resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw > switches:
                found.seconds += slept / 1e9
                found.longest_s = max(found.longest_s, slept / 1e9)
            found.callbacks += 1

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]
    try:
        yield found
    finally:
        asyncio.events.Handle._run = original  # type: ignore[method-assign]
