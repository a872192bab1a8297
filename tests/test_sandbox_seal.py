"""The sealed sandbox (issue 25: items 2, 4, 5, 7 and 9). Each attack of a hostile pull request
is first shown to work where nothing stops it (a check run without the sandbox, or the state of
the host before the fix's path runs), then stopped: host unix sockets, the orchestrator's own state
and other data on the host, secrets in ordinary variables, fork, memory, file, /tmp, open-file and
CPU bombs (each with a fuse of its own should a limit fail, so that the machine stays safe), and
the scratch copies a signal or a kill would leave behind."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.checks import CheckRun, Verifier, bubblewrap_problem, find_sandbox, leftovers
from orchestrator.checks._limits import launcher, limit_hit
from orchestrator.checks._owner import owner_token
from orchestrator.checks._process import check_environment
from orchestrator.checks._sandbox import Sandbox
from orchestrator.checks._scratch import OWNER, PREFIX
from orchestrator.runtime.verify import make_verifier, own_folders
from orchestrator.spec import CheckSpec, load_spec
from orchestrator.spec.operator import ChecksLimits
from tests.process import orchestrator
from tests.servers.model_server import ModelServer
from tests.test_agentic import QUICKSTART, RIGHT_FIX, diagnosis
from tests.test_durable import run_id_of
from tests.test_verify import Listener

needs_bwrap = pytest.mark.skipif(bool(bubblewrap_problem()), reason=bubblewrap_problem() or "")


def run_check(
    workspace: Path, command: str, mode: str = "required", limits: ChecksLimits | None = None, timeout_s: float = 120
) -> CheckRun:
    """One run of `command` as a check on `workspace`, in the sandbox `mode` finds here."""
    sandbox = find_sandbox(mode, limits=limits, hidden=own_folders())
    verifier = Verifier(workspace, {"check": CheckSpec(run=command, timeout_s=timeout_s)}, ["check"], sandbox)
    try:
        return asyncio.run(verifier.run("check", None, "t"))
    finally:
        verifier.close()


def script(workspace: Path, name: str, text: str) -> Path:
    workspace.mkdir(parents=True, exist_ok=True)
    path = workspace / name
    path.write_text(textwrap.dedent(text))
    return path


# ---- item 2: host unix sockets


class UnixListener(Listener):
    """A unix socket of the host (an agent's, a daemon's) that counts who reaches it."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        bound = socket.socket(socket.AF_UNIX)
        bound.bind(str(path))
        super().__init__(bound)

    def close(self) -> None:
        super().close()
        self.path.unlink(missing_ok=True)


CONNECT = """
import socket, sys
for path in sys.argv[1:]:
    try:
        client = socket.socket(socket.AF_UNIX)
        client.settimeout(5)
        client.connect(path)
        print("REACHED", path, client.recv(5).decode())
    except OSError as exc:
        print("BLOCKED", path, type(exc).__name__)
"""


@pytest.fixture
def host_sockets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[UnixListener]]:
    """Listeners where host sockets live: /run (docker's, D-Bus'), /var/run, /tmp (ssh-agent's,
    X11's) and the home (gpg-agent's); the home is a folder of the test's own."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    tag = f"seal-{os.getpid()}-{tmp_path.name}"
    places = [Path(tempfile.mkdtemp(prefix=f"{tag}-")) / "agent.sock", home / ".gnupg" / "S.gpg-agent"]
    if os.access("/run", os.W_OK):
        places += [Path("/run") / f"{tag}.sock", Path("/var/run") / f"{tag}-var.sock"]
    listeners = [UnixListener(path) for path in places]
    try:
        yield listeners
    finally:
        for listener in listeners:
            listener.close()
        shutil.rmtree(places[0].parent, ignore_errors=True)


@needs_bwrap
def test_a_check_reaches_no_unix_socket_of_the_host(host_sockets: list[UnixListener], tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    script(workspace, "connect.py", CONNECT)
    command = "python connect.py " + " ".join(str(listener.path) for listener in host_sockets)
    exposed = run_check(workspace, command, mode="off")  # the attack, where nothing stops it
    assert exposed.output.count("REACHED") == len(host_sockets), exposed.output
    reached = [listener.connections for listener in host_sockets]
    assert all(reached)

    sealed = run_check(workspace, command)
    assert sealed.status == "pass" and sealed.sandbox == "bubblewrap"
    assert sealed.output.count("BLOCKED") == len(host_sockets) and "REACHED" not in sealed.output, sealed.output
    assert [listener.connections for listener in host_sockets] == reached  # nobody came


# ---- item 4: the orchestrator's own state, and the rest of the host


SNOOP = """
import subprocess, sys
from pathlib import Path
for path in sys.argv[1:]:
    print("SEEN" if Path(path).exists() else "ABSENT", path)
print(subprocess.run(["seal-tool"], capture_output=True, text=True).stdout.strip())
"""


@needs_bwrap
def test_a_check_sees_its_toolchains_but_not_the_orchestrators_state_nor_other_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    local = home / ".local"
    key = local / "state" / "sovereign-orchestrator" / "machine.key"
    other_repo = local / "state" / "sovereign-orchestrator" / "workspaces" / "other-0a1b2c" / "checkpoints.sqlite"
    keyring = local / "share" / "keyrings" / "login.keyring"
    user_package = local / "lib" / "python3" / "site-packages" / "seal.py"
    toolchain_data = home / "tc" / "orchestrator-data" / "cache.sqlite"  # the data folder inside a toolchain
    other_workspace = tmp_path / "other-ws" / "secret.txt"
    for path in (key, other_repo, keyring, user_package, toolchain_data, other_workspace):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("secret\n")
    tool = local / "bin" / "seal-tool"  # pip --user, pipx: ~/.local/bin is on PATH (Ubuntu's profile)
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\necho TOOL RAN\n")
    tool.chmod(0o755)
    (home / "tc" / "bin").mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_STATE_HOME")  # the state folder is the default one, ~/.local/state/...
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(toolchain_data.parent))
    monkeypatch.setenv("PATH", f"{local / 'bin'}{os.pathsep}{home / 'tc' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    workspace = tmp_path / "ws"
    script(workspace, "snoop.py", SNOOP)
    hidden = [key, other_repo, keyring, toolchain_data, other_workspace]
    command = "python snoop.py " + " ".join(map(str, [*hidden, user_package]))

    exposed = run_check(workspace, command, mode="off")  # the attack, where nothing stops it
    assert exposed.output.count("SEEN") == len(hidden) + 1, exposed.output

    sealed = run_check(workspace, command)
    assert sealed.status == "pass", sealed.output
    for path in hidden:
        assert f"ABSENT {path}" in sealed.output, sealed.output
    assert f"SEEN {user_package}" in sealed.output and "TOOL RAN" in sealed.output  # the toolchain is there


ROOT = """
import json, os
print(json.dumps([os.listdir("/"), os.listdir("/run"), os.listdir("/var"), os.listdir(os.environ["HOME"])]))
"""


@needs_bwrap
def test_nothing_of_the_host_is_there_but_the_system_the_toolchains_and_the_copy(tmp_path: Path) -> None:
    """The sandbox's root holds the system's folders and empty private ones, no host folder
    where data or sockets live (/home, /srv, /mnt, /var's and /run's content), and of the home
    only the toolchains."""
    workspace = tmp_path / "ws"
    script(workspace, "root.py", ROOT)
    sealed = run_check(workspace, "python root.py")
    assert sealed.status == "pass", sealed.output
    top, run, var, home = json.loads(sealed.output)
    for absent in ("home", "srv", "mnt", "media", "boot"):
        assert absent not in top
    assert run == [] and sorted(var) == ["run", "tmp"]
    real_home = Path.home().resolve()
    toolchains = {
        p.relative_to(real_home).parts[0] for p in find_sandbox("required").read_only if p.is_relative_to(real_home)
    }
    assert set(home) <= toolchains, (home, toolchains)


# ---- item 5: the environment is an allow-list


@needs_bwrap
@pytest.mark.parametrize("mode", ["off", "required"])
def test_secrets_with_ordinary_names_do_not_reach_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    secrets = {
        "DATABASE_URL": "postgres://app:hunter2-db@db.internal/app",
        "CI_JOB_JWT": "eyJhbGciOiJSUzI1NiJ9.seal-jwt",
        "SENTRY_DSN": "https://seal-dsn-key@o1.ingest.sentry.io/1",
    }
    passed = {"SEAL_TOOL_HOME": "/opt/seal", "SEAL_MODE": "strict", "LANG": "C.UTF-8", "TZ": "UTC"}
    for name, value in {**secrets, **passed}.items():
        monkeypatch.setenv(name, value)
    policy = tmp_path / "policy.yaml"
    policy.write_text("checks_env: [SEAL_*]\n")  # the operator's policy names what checks may receive
    monkeypatch.setenv("ORCHESTRATOR_POLICY", str(policy))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: env\ngoal: g\nworkspace: ws\n"
        f"checks: {{env: {{run: 'env', timeout_s: 60}}}}\nverify: {{sandbox: {mode}}}\n"
    )
    assert all(os.environ[name] == value for name, value in secrets.items())  # the attack's material
    verifier = make_verifier(load_spec(spec))
    assert verifier is not None
    try:
        run = asyncio.run(verifier.run("env", None, "t"))
    finally:
        verifier.close()
    assert run.status == "pass", run.output
    for name, value in secrets.items():
        assert name not in run.output and value not in run.output
    for name, value in passed.items():
        assert f"{name}={value}" in run.output
    names = {line.split("=", 1)[0] for line in run.output.splitlines() if "=" in line}
    allowed = {"PATH", "HOME", "LANG", "TERM", "TMPDIR", "TMP", "TEMP", "TZ", "PWD", "SHLVL", "_"}
    allowed |= {"VIRTUAL_ENV"}  # the project's environment the checks run (docs/verification.md)
    assert names <= allowed | {n for n in names if n.startswith(("LC_", "SEAL_"))}, names


def test_the_allow_list_takes_names_and_prefixes() -> None:
    environ = {"PATH": "/bin", "LC_ALL": "C", "AWS_SECRET": "s", "PIP_INDEX_URL": "u", "PYTEST_ADDOPTS": "-q"}
    env = check_environment([], "/tmp", environ, passed=["PYTEST_*", "PIP_INDEX_URL"])
    assert env == {"PATH": "/bin", "LC_ALL": "C", "PIP_INDEX_URL": "u", "PYTEST_ADDOPTS": "-q"} | {
        "TMPDIR": "/tmp",
        "TMP": "/tmp",
        "TEMP": "/tmp",
    }
    assert "PIP_INDEX_URL" not in check_environment(["u"], "/tmp", environ, passed=["PIP_INDEX_URL"])


# ---- item 7: resource limits

FORK_BOMB = """
import os, sys, time
forked = 0
try:
    while forked < 500:  # the fuse: had the limit failed, the bomb would stop here
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        forked += 1
except OSError as exc:
    print("forked", forked, "then", exc, flush=True)
    sys.exit(1)
print("forked", forked, "without hitting a limit")
"""

MEMORY_BOMB = """
import sys
kept = []
try:
    while len(kept) < 64:  # the fuse: 2 GB
        kept.append(bytearray(32 * 1024 * 1024))
except MemoryError:
    print("allocated", 32 * len(kept), "MB then MemoryError", flush=True)
    raise
print("allocated", 32 * len(kept), "MB without hitting a limit")
"""

FILL = """
import sys
with open(sys.argv[1], "wb") as out:
    for mb in range(100):  # the fuse: 100 MB
        out.write(bytes(1024 * 1024))
        out.flush()
print("wrote 100 MB without hitting a limit")
"""

FILES = """
handles = [open("/dev/null") for _ in range(2000)]
print("opened", len(handles), "files without hitting a limit")
"""

BURN = """
import time
end = time.monotonic() + 60  # the fuse: a minute of wall time
while time.monotonic() < end:
    pass
print("burned a minute without hitting a limit")
"""

BOMBS = {
    "processes": (FORK_BOMB, "python bomb.py", ChecksLimits(processes=40)),
    "memory_mb": (MEMORY_BOMB, "python bomb.py", ChecksLimits(memory_mb=256)),
    "file_size_mb": (FILL, "python bomb.py big.bin", ChecksLimits(file_size_mb=8)),
    "tmp_mb": (FILL, "python bomb.py /tmp/big.bin", ChecksLimits(tmp_mb=8)),
    "open_files": (FILES, "python bomb.py", ChecksLimits(open_files=64)),
    "cpu_s": (BURN, "python bomb.py", ChecksLimits(cpu_s=1)),
}


@needs_bwrap
@pytest.mark.parametrize("name", list(BOMBS))
def test_a_bomb_is_stopped_by_its_limit_and_reported_as_limit(tmp_path: Path, name: str) -> None:
    source, command, limits = BOMBS[name]
    if name in find_sandbox("required").unbounded:  # and validate says so
        pytest.skip(f"{name} cannot hold here (root without a pids cgroup, or bubblewrap before 0.8)")
    workspace = tmp_path / "ws"
    script(workspace, "bomb.py", source)
    run = run_check(workspace, command, limits=limits, timeout_s=240)
    # stopped by the limit, inside its timeout, and named
    assert (run.status, run.limit) == ("limit", name), run.output
    assert f"stopped by a limit: {name} = {getattr(limits, name)}" in run.output
    assert "without hitting a limit" not in run.output
    if name == "processes":
        forked = int(run.output.split("forked ")[1].split()[0])
        assert forked < limits.processes
    if name == "memory_mb":
        assert int(run.output.split("allocated ")[1].split()[0]) < 256


@needs_bwrap
def test_a_shell_writing_past_the_file_size_limit_is_killed_by_sigxfsz(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    run = run_check(workspace, "head -c 50000000 /dev/zero > big.bin", limits=ChecksLimits(file_size_mb=4))
    assert (run.status, run.limit, run.exit_code) == ("limit", "file_size_mb", 128 + signal.SIGXFSZ)


def test_the_default_limits_hold_here_or_say_which_do_not() -> None:
    sandbox = find_sandbox("required")
    assert sandbox.limits == ChecksLimits() and sandbox.info().limits == ChecksLimits()
    if sandbox.isolated:
        assert sandbox.unbounded == [] or (os.geteuid() == 0 and sandbox.unbounded == ["processes"])
    else:
        assert "tmp_mb" in sandbox.unbounded


@needs_bwrap
@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/python3").exists(), reason="switches to nobody")
def test_the_fork_bomb_of_a_user_who_is_not_root_is_bounded_inside_the_user_namespace() -> None:
    """Root is exempt from RLIMIT_NPROC (its tests use a pids cgroup); anyone else gets the
    limit inside the sandbox's user namespace, counting the check's own processes only. The same
    command, run as `nobody` (with the system's Python, which nobody may read)."""
    base = Path(tempfile.mkdtemp(prefix="seal-nobody-"))
    try:
        base.chmod(0o755)
        copy = base / "ws"
        script(copy, "bomb.py", FORK_BOMB)
        limits = ChecksLimits(processes=30)
        sandbox = Sandbox("required", "bubblewrap", home=base / "home", limits=limits)
        argv = launcher(["/usr/bin/python3", "bomb.py"], limits, sandboxed=True, python="/usr/bin/python3")
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *sandbox.command(argv, copy, base)]
        done = subprocess.run(command, cwd=copy, capture_output=True, text=True, timeout=240, check=False)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "forked " in output, output
    assert int(output.split("forked ")[1].split()[0]) < limits.processes
    assert limit_hit(done.returncode, output, None) == "processes"


# ---- item 9: scratch copies removed at the end of every path


def scratch_of(tmp: Path, pid: int | None = None) -> list[Path]:
    """The scratch folders in `tmp` (of the process `pid`, when given)."""
    found = []
    for folder in tmp.glob(f"{PREFIX}*"):
        owner = (folder / OWNER).read_text() if (folder / OWNER).exists() else ""
        if pid is None or owner.split("-")[0] == str(pid):
            found.append(folder)
    return found


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def running(argv: list[str], ancestor: int | None = None) -> bool:
    """Whether a process runs `argv` (descending from `ancestor`, when given)."""
    wanted = "\0".join(argv).encode() + b"\0"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "cmdline").read_bytes() != wanted:
                continue
            if ancestor is None:
                return True
            pid = int(entry.name)
            while pid > 1:
                if pid == ancestor:
                    return True
                pid = int((Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError):
            continue
    return False


SLEEP = ["sleep", "97.25"]
SLOW = "if [ -f slow ]; then sleep 97.25; fi; python -m pytest -q -p no:cacheprovider"


def slow_project(tmp_path: Path, spec_text: str) -> Path:
    shutil.copytree(QUICKSTART, tmp_path / "project", ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    (tmp_path / "project" / "slow").write_text("the check sleeps while this file is in the copy\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent(spec_text))
    (tmp_path / "fix.diff").write_text(RIGHT_FIX)
    (tmp_path / "tmp").mkdir()
    return spec


VERIFY_SPEC = f"""\
    version: 1
    name: slow
    goal: g
    workspace: project
    checks: {{tests: {{run: "{SLOW}", timeout_s: 300}}}}
    """


def verify_mid_check(tmp_path: Path) -> subprocess.Popen[str]:
    """`orchestrator verify` of a slow check, once the check runs."""
    spec = slow_project(tmp_path, VERIFY_SPEC)
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "verify", str(spec), "--patch", str(tmp_path / "fix.diff")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CI": "1", "TMPDIR": str(tmp_path / "tmp")},
    )
    try:
        wait_until(lambda: running(SLEEP, process.pid), "the check to run")
    except AssertionError:
        process.kill()
        raise
    return process


@needs_bwrap
def test_sigterm_to_verify_mid_check_leaves_no_scratch_copy(tmp_path: Path) -> None:
    process = verify_mid_check(tmp_path)
    try:
        assert scratch_of(tmp_path / "tmp", process.pid)  # the copy the attack would leave behind
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 143, stderr
    assert scratch_of(tmp_path / "tmp") == []
    wait_until(lambda: not running(SLEEP), "the check to end")


@needs_bwrap
def test_the_copies_of_a_killed_verify_are_removed_by_gc(tmp_path: Path) -> None:
    process = verify_mid_check(tmp_path)
    process.kill()  # SIGKILL: nothing of ours runs
    process.communicate(timeout=120)
    wait_until(lambda: not running(SLEEP), "the check to end with its orchestrator")
    left = scratch_of(tmp_path / "tmp", process.pid)
    assert left and (left[0] / "pristine" / "slow").exists()  # a full copy of the workspace, left behind
    env = {"TMPDIR": str(tmp_path / "tmp")}
    listed = orchestrator("gc", "--dry-run", env=env)
    assert listed.returncode == 0 and str(left[0]) in listed.stdout and left[0].exists()
    removed = orchestrator("gc", env=env)
    assert removed.returncode == 0 and str(left[0]) in removed.stdout, removed.stderr
    assert scratch_of(tmp_path / "tmp") == []


RUN_SPEC = """\
    version: 1
    name: killed
    goal: Find why test_new_store_is_empty fails and fix it.
    workspace: project
    include: ["**/*.py"]
    providers: {{api: {{kind: openai, base_url: '{url}/v1'}}}}
    tasks:
      - {{role: debug, instruction: Find why test_new_store_is_empty fails., files: [inventory/store.py]}}
    models: {{planner: api/planner, debug: api/debug}}
    checks: {{tests: {{run: "{slow}", timeout_s: 300}}}}
    verify: {{checks: [tests], reflections: 0}}
    limits: {{timeout_s: 120, backoff_s: 0.05}}
    fail_on: none
    """


@needs_bwrap
def test_the_copies_of_a_killed_run_are_removed_when_it_resumes(tmp_path: Path) -> None:
    with ModelServer({"planner": "canned", "debug": "canned"}) as server:
        server.state.canned_text["debug"] = diagnosis(RIGHT_FIX)
        spec = slow_project(tmp_path, RUN_SPEC.format(url=server.url, slow=SLOW))
        env = {**os.environ, "CI": "1", "TMPDIR": str(tmp_path / "tmp")}
        command = [sys.executable, "-m", "orchestrator", "run", str(spec), "--output-dir", str(tmp_path / "out")]
        process = subprocess.Popen([*command, "--no-cache"], stderr=subprocess.PIPE, text=True, env=env)
        try:
            wait_until(lambda: running(SLEEP, process.pid), "the check to run")
        finally:
            process.kill()
            _, stderr = process.communicate(timeout=120)
        wait_until(lambda: not running(SLEEP), "the check to end with its orchestrator")
        left = scratch_of(tmp_path / "tmp", process.pid)
        assert left and (left[0] / "pristine" / "slow").exists()
        stale_groups = [p for p in Path("/sys/fs/cgroup/pids").glob(f"{PREFIX}{process.pid}-*")]
        (tmp_path / "project" / "slow").unlink()  # the resumed run's check does not sleep
        resumed = orchestrator("resume", run_id_of(stderr), "--no-cache", env={"TMPDIR": str(tmp_path / "tmp")})
    assert resumed.returncode == 0, resumed.stderr
    assert scratch_of(tmp_path / "tmp") == []  # the killed run's, and the resumed run's own
    assert not any(group.exists() for group in stale_groups)
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["verification"]["patches"][0]["verdict"] == "verified"


def ours(found: list[Path], tmp: Path) -> list[Path]:
    """The leftovers in `tmp` (other tests' killed processes may have left cgroups)."""
    return sorted(p for p in found if p.is_relative_to(tmp))


def test_leftovers_are_the_folders_of_dead_processes_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen(["true"])
    gone.wait()
    mine, dead, unmarked = (tmp_path / f"{PREFIX}{name}" for name in ("mine", "dead", "unmarked"))
    for folder in (mine, dead, unmarked):
        folder.mkdir()
    (mine / OWNER).write_text(owner_token())
    (dead / OWNER).write_text(owner_token(gone.pid).split("-")[0] + "-1")
    assert ours(leftovers(), tmp_path) == [dead]  # a live owner's, and one being made (no mark yet), are not
    os_pid_reused = tmp_path / f"{PREFIX}reused"
    os_pid_reused.mkdir()
    (os_pid_reused / OWNER).write_text(f"{os.getpid()}-1")  # this pid, but not this process's start
    assert ours(leftovers(), tmp_path) == sorted([dead, os_pid_reused])
    assert stat.S_ISDIR(mine.stat().st_mode)


def test_the_operators_limits_reach_checks_and_validate_and_a_bad_one_is_a_spec_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("checks_limits: {processes: 64, tmp_mb: 16}\nchecks_env: [PYTEST_ADDOPTS]\n")
    monkeypatch.setenv("ORCHESTRATOR_POLICY", str(policy))
    (tmp_path / "ws").mkdir()
    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\nname: l\ngoal: g\nworkspace: ws\nchecks: {t: {run: 'true'}}\n")
    verifier = make_verifier(load_spec(spec))
    assert verifier is not None
    verifier.close()
    assert verifier.sandbox.limits == ChecksLimits(processes=64, tmp_mb=16)
    assert verifier.sandbox.env == ("PYTEST_ADDOPTS",)
    shown = orchestrator("validate", spec, env={"ORCHESTRATOR_POLICY": str(policy)})
    assert shown.returncode == 0 and "check limits: memory_mb 4096, processes 64," in shown.stdout, shown.stderr
    policy.write_text("checks_limits:\n  processes: 0\n")
    refused = orchestrator("validate", spec, env={"ORCHESTRATOR_POLICY": str(policy)})
    assert refused.returncode == 2 and f"{policy}:2" in refused.stderr and "processes" in refused.stderr
    assert "Traceback" not in refused.stderr
