"""The launcher of a check process: never imported, its source is run with `python -I -S -c`
(isolated, without site: it starts fast, reads no environment and needs nothing of the
orchestrator's installation, inside the sandbox or not). `_limits` builds its command lines.

    python -I -S -c SOURCE LIMITS LIFELINE COMMAND...

- LIMITS: the rlimits to set, `NAME:SOFT:HARD,...` (never above the hard limit inherited);
- LIFELINE: `FD:SCOPE`, the read end of a pipe whose write end only the orchestrator holds. A
  watcher process waits on it; at end-of-file (the orchestrator is done with the check, or died,
  however early: bubblewrap's own --die-with-parent misses a death during the sandbox's setup)
  it kills SCOPE: `all`, every process of the sandbox's PID namespace, or `group`, the check's
  process group;
- "" for either: none. Then it execs COMMAND, with the signals Python ignores restored (as
  subprocess does: an ignored SIGPIPE or SIGXFSZ would be inherited by the check).
"""

from __future__ import annotations

import os
import resource
import signal
import sys


def watch(lifeline: str) -> None:
    """Fork the watcher of the lifeline (stdio closed, so that the check's output ends with it)."""
    fd, scope = lifeline.split(":")
    try:
        watcher = os.fork()
    except OSError:
        return
    if watcher:
        os.close(int(fd))
        return
    null = os.open(os.devnull, os.O_RDWR)
    for stdio in (0, 1, 2):
        os.dup2(null, stdio)
    try:
        os.read(int(fd), 1)
    finally:
        if scope == "all":
            os.kill(-1, signal.SIGKILL)
        else:
            os.killpg(os.getpgid(0), signal.SIGKILL)
        os._exit(0)


def main(argv: list[str]) -> None:
    limits, lifeline = argv[1:3]
    for name in ("SIGPIPE", "SIGXFSZ", "SIGXFZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    for item in filter(None, limits.split(",")):
        name, soft, hard = item.split(":")
        kind = getattr(resource, "RLIMIT_" + name)
        ceiling = resource.getrlimit(kind)[1]
        capped = [v if ceiling == resource.RLIM_INFINITY else min(v, ceiling) for v in (int(soft), int(hard))]
        resource.setrlimit(kind, (capped[0], capped[1]))
    if lifeline:
        watch(lifeline)
    try:
        os.execvp(argv[3], argv[3:])
    except OSError as exc:
        sys.stderr.write(f"{argv[3]}: {exc.strerror}\n")
        sys.exit(127 if isinstance(exc, FileNotFoundError) else 126)


if __name__ == "__main__":
    main(sys.argv)
