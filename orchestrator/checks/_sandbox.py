"""The sandbox a check runs in: bubblewrap (Linux namespaces), failing closed.

Inside it a check sees only what it needs (`_mounts`): its scratch copy, the only place it may
write besides a private /tmp and home of a bounded size; the system's folders and the
toolchains on PATH, read-only; no host socket file (/run, /var/run, /tmp and the home are empty
ones), none of the orchestrator's state, keys or caches, no other workspace. There is no network
at all, the host's loopback included (its own network namespace); all capabilities are dropped;
its processes live in their own PID namespace, so killing the sandbox at `timeout_s` kills them
all; and it runs under the operator's resource limits (`_limits`).

`sandbox_mode` is the one decision of the mode in force (an operator's policy can force it there):
`required` (the default when CI is set) refuses to run checks without a sandbox, and the run
stops before any model call; `preferred` (elsewhere) warns loudly and runs the check unsandboxed
in its scratch copy; `off` runs it unsandboxed, quietly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from orchestrator.checks._limits import MIB, pids_hierarchy
from orchestrator.checks._mounts import private_mounts, system_mounts, toolchain_mounts, toolchains
from orchestrator.checks._records import SandboxInfo
from orchestrator.spec.operator import ChecksLimits

BWRAP = "bwrap"
PROBE_TIMEOUT_S = 20


def sandbox_mode(configured: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The mode in force: the spec's `verify.sandbox`, else `required` in CI, else `preferred`."""
    environ = os.environ if environ is None else environ
    if configured is not None:
        return configured
    return "required" if environ.get("CI") else "preferred"


@dataclass(frozen=True)
class Sandbox:
    """How checks are run: `runner` is bubblewrap or none (then `reason` says why)."""

    mode: str
    runner: str  # "bubblewrap" | "none"
    reason: str = ""
    home: Path = field(default_factory=Path.home)
    read_only: tuple[Path, ...] = ()  # the toolchains bound read-only (_mounts.toolchains)
    limits: ChecksLimits = field(default_factory=ChecksLimits)  # the operator policy's checks_limits
    env: tuple[str, ...] = ()  # the variables checks receive besides the base ones (checks_env)
    hidden: tuple[Path, ...] = ()  # the orchestrator's own folders: never visible inside

    @property
    def isolated(self) -> bool:
        return self.runner == "bubblewrap"

    @property
    def refused(self) -> bool:
        """Checks may not run: a sandbox is required and there is none."""
        return self.mode == "required" and not self.isolated

    @property
    def unbounded(self) -> list[str]:
        """The limits that do not hold here: a processes limit needs the sandbox's user namespace
        (root: a pids cgroup), the size of /tmp a sandbox and a bubblewrap that can bound it."""
        counted = pids_hierarchy() is not None or (self.isolated and os.geteuid() != 0)
        sized = self.isolated and "--size" in bubblewrap_options()
        return [name for name, holds in (("processes", counted), ("tmp_mb", sized)) if not holds]

    def info(self) -> SandboxInfo:
        return SandboxInfo.model_validate(
            {
                "mode": self.mode,
                "runner": self.runner,
                "reason": self.reason,
                "limits": self.limits,
                "unbounded": self.unbounded,
            }
        )

    def command(
        self, argv: Sequence[str], copy: Path, private_tmp: Path, at: Path | None = None, keep: Sequence[Path] = ()
    ) -> list[str]:
        """The argv that runs `argv` in `copy` (the sandbox's, when there is one), where the copy
        stands at the path `at` (the workspace's) with the folders `keep` bound into it."""
        if not self.isolated:
            return list(argv)
        args = [
            BWRAP,
            "--unshare-all",  # network (host loopback too), PID, IPC, UTS, cgroup, user when possible
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
        ]
        args += self.mounts()
        args += [*workspace_binds(copy, at or copy, keep), "--remount-ro", "/", "--chdir", str(at or copy), "--"]
        return args + list(argv)

    def mounts(self) -> list[str]:
        """The sandbox's file system but the copy: see `_mounts`."""
        size = self.limits.tmp_mb * MIB if "--size" in bubblewrap_options() else None
        return [*system_mounts(), *private_mounts(self.home, size), *toolchain_mounts(self.read_only, self.hidden)]


def workspace_binds(copy: Path, at: Path, keep: Sequence[Path]) -> list[str]:
    """bubblewrap arguments that put the scratch copy at the workspace's own path `at` (editable
    installs, .pth files and absolute paths of the project's environment then lead to the
    patched copy; the original workspace is not in the sandbox at all) and bind the workspace's
    environments `keep` read-only at their place in it. After every other mount, so nothing
    bound before shows through the copy."""
    args = ["--bind", str(copy), str(at)]
    for path in keep:
        args += ["--ro-bind-try", str(path), str(path)]
    return args


def find_sandbox(
    mode: str,
    shared: Sequence[Path] = (),
    *,
    limits: ChecksLimits | None = None,
    env: Sequence[str] = (),
    hidden: Sequence[Path] = (),
) -> Sandbox:
    """The sandbox available here for `mode` ("off": none is looked for). `shared` are the
    workspace's environments a check may read (its .venv); `limits` and `env` the operator's
    checks_limits and checks_env; `hidden` the orchestrator's own folders."""
    home = Path.home()
    none = Sandbox(mode, "none", "verify.sandbox is off", home, (), limits or ChecksLimits(), tuple(env), tuple(hidden))
    if mode == "off":
        return none
    why = bubblewrap_problem()
    if why:
        return replace(none, reason=why)
    return replace(none, runner="bubblewrap", reason="", read_only=tuple(toolchains(home, shared)))


@cache
def bubblewrap_problem() -> str:
    """Why bubblewrap cannot isolate a process here ("" when it can): probed once per process."""
    if sys.platform != "linux":
        return f"no sandbox on {sys.platform}: bubblewrap needs Linux namespaces"
    if shutil.which(BWRAP) is None:
        return "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    probe = [BWRAP, "--unshare-all", "--die-with-parent", "--cap-drop", "ALL", "--ro-bind", "/", "/", "true"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap does not start here: {exc}"
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        return f"bubblewrap cannot create namespaces here: {detail[-1] if detail else done.returncode}"
    return ""


@cache
def bubblewrap_options() -> frozenset[str]:
    """The options this bubblewrap knows (`--size` came with 0.8): read once from its --help."""
    try:
        done = subprocess.run([BWRAP, "--help"], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(word for word in (done.stdout + done.stderr).split() if word.startswith("--"))
