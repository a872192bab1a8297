"""Running one check (or the environment probe) in a scratch copy: the sandbox's command with the
copy at the workspace's own path, the project's interpreter first on PATH, a JUnit report asked of
pytest (`--junitxml` through PYTEST_ADDOPTS, into the copy) or read where the check says it writes
one, secrets masked in the output, and whether the run can judge anything."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.checks._interpreter import Interpreter
from orchestrator.checks._junit import read_report, read_reports
from orchestrator.checks._limits import described, grouped, launcher, limit_hit, pids_group
from orchestrator.checks._probe import PROBE_TIMEOUT_S, probe_argv, read_probe
from orchestrator.checks._process import NOT_RUNNABLE, Finished, check_environment, run_command
from orchestrator.checks._records import CheckRun, CheckStatus, Environment, TestStatus
from orchestrator.checks._sandbox import Sandbox
from orchestrator.checks._verdict import runs_pytest, unusable
from orchestrator.policy import redact
from orchestrator.spec import CheckSpec

# where pytest writes its JUnit report: in the copy (the one folder of the sandbox this process
# reads back), in a folder the workspace's own files never use
REPORTS = ".orchestrator-checks"


@dataclass
class Runner:
    """What every check run of a verifier shares: where the copy stands, the sandbox, the
    interpreter, the secrets to mask, the slots and the clock."""

    workspace: Path
    sandbox: Sandbox
    interpreter: Interpreter
    secrets: list[str]
    keep: Sequence[Path]
    slots: asyncio.Semaphore
    offset_ms: Callable[[], int]

    def environment(self, tmp: Path) -> dict[str, str]:
        inside_tmp = "/tmp" if self.sandbox.isolated else str(tmp)
        env = check_environment(self.secrets, inside_tmp, passed=self.sandbox.env)
        for key, value in self.interpreter.environment().items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def command(self, argv: Sequence[str], copy: Path, tmp: Path) -> list[str]:
        if not self.sandbox.isolated:
            return list(argv)
        return self.sandbox.command(argv, copy, tmp, at=self.workspace, keep=self.keep)

    async def limited(
        self, argv: Sequence[str], copy: Path, tmp: Path, env: dict[str, str], timeout_s: float
    ) -> tuple[Finished, str | None]:
        """Run `argv` under the operator's limits (the launcher's rlimits, and a pids cgroup of
        its own where one can be made), tied to this process by a lifeline (a pipe whose write
        end only this process holds): what it did, and the limit it hit (None: none)."""
        limits, isolated = self.sandbox.limits, self.sandbox.isolated
        lifeline, held = os.pipe()
        inner = launcher(list(argv), limits, sandboxed=isolated, lifeline=lifeline)
        group = pids_group(limits.processes)
        try:
            command = grouped(self.command(inner, copy, tmp), group)
            done = await run_command(command, copy, env, timeout_s, pass_fds=[lifeline])
            return done, limit_hit(done.exit_code, done.output, group)
        finally:
            os.close(lifeline)
            os.close(held)
            if group is not None:
                await asyncio.to_thread(group.remove)

    async def run(self, name: str, spec: CheckSpec, copy: Path, tmp: Path) -> CheckRun:
        """Run check `name` in `copy`: its status, output, per-test results and usability."""
        argv = ["/bin/sh", "-c", spec.run] if isinstance(spec.run, str) else list(spec.run)
        env = self.environment(tmp)
        pytest = runs_pytest(spec.run)
        report = copy / REPORTS / f"junit-{name}.xml"
        _remove_reports(copy, f"{REPORTS}/junit-{name}.xml")
        plain = dict(env)
        if spec.junit:
            _remove_reports(copy, spec.junit)
        elif pytest:
            inside = (self.workspace if self.sandbox.isolated else copy) / REPORTS / report.name
            env["PYTEST_ADDOPTS"] = f"--junitxml={inside} {env.get('PYTEST_ADDOPTS', '')}".strip()
        async with self.slots:
            started_ms = self.offset_ms()
            done, limit = await self.limited(argv, copy, tmp, env, spec.timeout_s)
            if env != plain and done.exit_code == 4 and "junitxml" in done.output:
                # a project that turns the junitxml plugin off: judged by its exit code, as asked
                done, limit = await self.limited(argv, copy, tmp, plain, spec.timeout_s)
        output = redact(done.output, self.secrets).replace(str(copy), str(self.workspace))
        status: CheckStatus
        if done.error:
            status, output = "error", done.error
        elif done.timed_out:
            status, output = "timeout", f"{output}\n(killed after {spec.timeout_s:g}s: timeout_s)".lstrip()
        elif done.exit_code == 0:
            status = "pass"
        elif done.exit_code in NOT_RUNNABLE or (self.sandbox.isolated and output.startswith("bwrap:")):
            status = "error"
        elif limit is not None:
            status = "limit"
            output = f"{output}\n(stopped by a limit: {described(limit, self.sandbox.limits)}, checks_limits)".lstrip()
        else:
            status = "fail"
        tests: dict[str, TestStatus] | None = None
        problem = ""
        if status in ("pass", "fail"):
            if spec.junit:
                tests, problem = read_reports(copy, spec.junit)
            elif pytest and (report.is_file() or report.is_symlink()):
                tests, _ = read_report(report)
        run = CheckRun(
            name=name,
            status=status,
            exit_code=done.exit_code,
            duration_ms=done.duration_ms,
            started_ms=started_ms,
            output=output,
            truncated=done.truncated,
            sandbox=self.sandbox.runner,
            limit=limit if status == "limit" else None,
            tests=tests,
        )
        run.unusable = problem or unusable(run, pytest)
        return run

    async def probe(self, copy: Path, tmp: Path, packages: list[str]) -> Environment:
        """Where the check's interpreter imports each of `packages` from, in `copy`."""
        python = self.interpreter.python
        if python is None:
            environment = Environment(source=self.interpreter.source)
            environment.notes.append("no python on the checks' PATH: the environment probe did not run")
            return environment
        async with self.slots:
            argv = probe_argv(python, packages)
            done, _ = await self.limited(argv, copy, tmp, self.environment(tmp), PROBE_TIMEOUT_S)
        output = redact(done.error or done.output, self.secrets)
        return read_probe(output, done.exit_code, self.interpreter, packages, self.sandbox.isolated)


def _remove_reports(copy: Path, pattern: str) -> None:
    """A report the workspace (or the patch) left where the check writes its own is not its."""
    base = copy.resolve()
    for path in list(base.glob(pattern))[:1000]:
        if path.parent.resolve().is_relative_to(base) and (path.is_file() or path.is_symlink()):
            with contextlib.suppress(OSError):
                os.unlink(path)
