"""Running one check command: in its own process group (or the sandbox's PID namespace), killed
whole at its timeout, with stdout and stderr kept up to a bound (the head and the tail, where test
runners put their summary), and with an allow-list environment: the variables a tool needs to
run (BASE_ENV) and those the operator names (`checks_env`), never one that holds a secret."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HEAD_BYTES = 4_000
TAIL_BYTES = 28_000
DRAIN_S = 2.0  # after a kill, how long to wait for the pipe to close (a stray process may hold it)
NOT_RUNNABLE = (126, 127)  # the shell's "not executable" and "not found"
# what a check receives of the environment, besides what the operator names (`PREFIX_*`: a prefix)
BASE_ENV = ("PATH", "HOME", "LANG", "LC_*", "TERM", "TMPDIR", "TZ")


@dataclass
class Finished:
    exit_code: int | None
    timed_out: bool
    output: str
    truncated: bool
    duration_ms: int
    error: str = ""  # the command could not be started


class Bounded:
    """Keeps the first HEAD_BYTES and the last TAIL_BYTES of a stream."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, data: bytes) -> None:
        room = HEAD_BYTES - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail += data
        if len(self.tail) > TAIL_BYTES:
            cut = len(self.tail) - TAIL_BYTES
            self.dropped += cut
            del self.tail[:cut]

    def text(self) -> str:
        head = self.head.decode("utf-8", "replace")
        tail = self.tail.decode("utf-8", "replace")
        if not self.dropped:
            return head + tail
        return f"{head}\n... ({self.dropped} bytes of output not kept) ...\n{tail}"


def check_environment(
    secrets: Sequence[str], tmp: str, environ: Mapping[str, str] | None = None, *, passed: Sequence[str] = ()
) -> dict[str, str]:
    """The environment of a check: only BASE_ENV's variables and those `passed` names (the
    operator's checks_env), none that holds a secret, and a private TMPDIR."""
    environ = os.environ if environ is None else environ
    hidden = set(secrets)
    names = (*BASE_ENV, *passed)
    env = {key: value for key, value in environ.items() if _named(key, names) and value not in hidden}
    env.update(TMPDIR=tmp, TMP=tmp, TEMP=tmp)
    return env


def _named(key: str, names: Sequence[str]) -> bool:
    return any(key == name or (name.endswith("*") and key.startswith(name[:-1])) for name in names)


async def run_command(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], timeout_s: float, *, pass_fds: Sequence[int] = ()
) -> Finished:
    """Run `argv` to its end or its timeout (then its whole process group is killed); `pass_fds`
    are the descriptors it inherits."""
    started = time.perf_counter()
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed together
            pass_fds=tuple(pass_fds),
        )
    except OSError as exc:
        return Finished(None, False, "", False, _ms(started), error=f"cannot start {argv[0]}: {exc}")
    kept = Bounded()
    timed_out = False
    try:
        async with asyncio.timeout(timeout_s):
            await _read(process, kept)
            await process.wait()
    except TimeoutError:
        timed_out = True
        _kill_group(process)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_S):
                await _read(process, kept)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_S):
                await process.wait()
    except asyncio.CancelledError:
        _kill_group(process)
        raise
    finally:
        if process.returncode is None:
            _kill_group(process)
    code = None if timed_out else process.returncode
    return Finished(code, timed_out, kept.text(), bool(kept.dropped), _ms(started))


async def _read(process: asyncio.subprocess.Process, kept: Bounded) -> None:
    assert process.stdout is not None
    while chunk := await process.stdout.read(65536):
        kept.add(chunk)


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
