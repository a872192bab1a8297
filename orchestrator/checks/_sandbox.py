"""The sandbox a check runs in: bubblewrap (Linux namespaces), failing closed.

Inside it a check may write only its scratch copy and a private /tmp; the rest of the file system
is read-only, and the home folder is absent except for the toolchains on PATH (a pyenv, ~/.local),
read-only, so `~/.ssh` or `~/.aws` cannot end up in a check's output; there is no network at all,
the host's loopback included (its own network namespace); all capabilities are dropped; and its
processes live in their own PID namespace, so killing the sandbox at `timeout_s` kills them all.

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
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from orchestrator.checks._records import SandboxInfo

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
    read_only: tuple[Path, ...] = ()  # paths bound read-only inside a hidden home or /tmp

    @property
    def isolated(self) -> bool:
        return self.runner == "bubblewrap"

    @property
    def refused(self) -> bool:
        """Checks may not run: a sandbox is required and there is none."""
        return self.mode == "required" and not self.isolated

    def info(self) -> SandboxInfo:
        return SandboxInfo.model_validate({"mode": self.mode, "runner": self.runner, "reason": self.reason})

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
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
        ]
        if self.home.is_dir() and self.home != Path("/"):
            args += ["--tmpfs", str(self.home)]
        args += ["--bind", str(private_tmp), "/tmp"]  # the host's /tmp is not there: a private one is
        for path in self.read_only:
            args += ["--ro-bind-try", str(path), str(path)]
        args += workspace_binds(copy, at or copy, keep)
        return [*args, "--", *argv]


def workspace_binds(copy: Path, at: Path, keep: Sequence[Path]) -> list[str]:
    """bubblewrap arguments that put the scratch copy at the workspace's own path `at` (editable
    installs, .pth files and absolute paths of the project's environment then lead to the
    patched copy, and the original workspace is hidden under it), bind the workspace's
    environments `keep` read-only at their place in it, and start the check there. Last, so
    nothing bound before shows the original through the copy."""
    args = ["--bind", str(copy), str(at)]
    for path in keep:
        args += ["--ro-bind-try", str(path), str(path)]
    return [*args, "--chdir", str(at)]


def find_sandbox(mode: str, shared: Sequence[Path] = ()) -> Sandbox:
    """The sandbox available here for `mode` ("off": none is looked for). `shared` are paths a
    check may read even when they are under the hidden home or /tmp (a workspace's .venv)."""
    home = Path.home()
    if mode == "off":
        return Sandbox(mode, "none", "verify.sandbox is off", home)
    why = bubblewrap_problem()
    if why:
        return Sandbox(mode, "none", why, home)
    return Sandbox(mode, "bubblewrap", "", home, tuple(_read_only(home, shared)))


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


def _read_only(home: Path, shared: Sequence[Path]) -> list[Path]:
    """What stays visible, read-only, in a sandbox whose home and /tmp are hidden: the folder of
    home holding each toolchain on PATH (~/.pyenv for ~/.pyenv/shims), this interpreter's
    prefixes, and the shared paths that live under home or /tmp."""
    candidates = [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    candidates += [Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent]
    found: list[Path] = []
    for path in candidates:
        for root in (home, Path("/tmp")):
            try:
                relative = path.resolve().relative_to(root.resolve())
            except (ValueError, OSError):
                continue
            if relative.parts:
                found.append(root.resolve() / relative.parts[0])
    for path in shared:
        resolved = path.resolve()
        if any(resolved.is_relative_to(root.resolve()) for root in (home, Path("/tmp"))):
            found.append(resolved)
    return sorted(set(found))
