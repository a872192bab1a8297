"""Pools of hosts (`providers.X.base_urls`): calls spread least-busy over the hosts within each
host's limits, a failing host cools down while the others take its calls, and every host of a
pool is held to the trust and sovereignty rules a single base_url is."""

from __future__ import annotations

import asyncio
import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.catalog import ProviderConfig, Route, load_catalog
from orchestrator.catalog.provider import hosts_of
from orchestrator.errors import SpecError
from orchestrator.models._hosts import Host, HostPool
from orchestrator.policy import Rules, refusal, untrusted
from orchestrator.spec import load_spec
from orchestrator.workflow import prepare_workflow
from tests.process import orchestrator
from tests.servers.loopback import free_port
from tests.servers.model_server import ModelServer

PR = {"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request"}
HEAD = "version: 1\nname: pool\ngoal: g\nworkspace: ws\n"
TASKS = 12


# ---------------------------------------------------------------- the scheduler, on its own


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def pool_of(count: int, clock: Clock | None = None, **limits: Any) -> HostPool:
    urls = tuple(f"http://10.0.0.{i}:8000/v1" for i in range(1, count + 1))
    return HostPool(urls, clock=clock or Clock(), **limits)


def test_calls_go_to_the_least_busy_host_taking_turns_on_ties() -> None:
    async def main() -> tuple[list[int], list[int], int, bool]:
        pool = pool_of(3, max_concurrency=2)
        first = [(await pool.acquire("m")).index for _ in range(6)]
        waiting = asyncio.ensure_future(pool.acquire("m"))
        await asyncio.sleep(0)
        blocked = not waiting.done()  # every host holds 2: the 7th call waits
        pool.release(pool.hosts[1], "m")
        seventh = await waiting
        pool.release(pool.hosts[0], "m")
        pool.release(pool.hosts[0], "m")  # host 0 is now the least busy, whoever's turn it is
        eighth = await pool.acquire("m")
        return first, [seventh.index], eighth.index, blocked

    first, seventh, eighth, blocked = asyncio.run(main())
    assert first == [0, 1, 2, 0, 1, 2]
    assert blocked and seventh == [1] and eighth == 0


def test_the_per_model_limit_holds_on_each_host() -> None:
    async def main() -> list[int]:
        pool = pool_of(2, max_per_model=1)
        taken = [(await pool.acquire("a")).index, (await pool.acquire("a")).index]
        other = await pool.acquire("b")  # another model still has room on either host
        blocked = asyncio.ensure_future(pool.acquire("a"))
        await asyncio.sleep(0)
        assert not blocked.done()
        pool.release(pool.hosts[taken[1]], "a")
        return [*taken, other.index, (await blocked).index]

    assert asyncio.run(main()) == [0, 1, 0, 1]


def test_a_failing_host_cools_down_and_gets_one_call_when_it_has_rested() -> None:
    async def main() -> None:
        clock = Clock()
        pool = pool_of(2, clock, max_concurrency=4, threshold=2, cooldown_s=30)
        bad, good = pool.hosts

        async def call(fails: bool) -> Host:
            host = await pool.acquire("m")
            if host is bad and fails:
                pool.failed(host)
            elif host is good:
                pool.succeeded(host)
            pool.release(host, "m")
            return host

        assert await call(True) is bad
        assert not bad.cooling(clock.now) and bad.failures == 1
        busy = [await pool.acquire("m") for _ in range(3)]  # a host in a failure streak: one call at a time
        assert [h.index for h in busy].count(bad.index) == 1
        for host in busy:
            if host is bad:
                pool.failed(host)
            pool.release(host, "m")
        assert bad.cooling(clock.now) and not pool.all_cooling()
        assert all([await call(True) is good for _ in range(5)])  # idle, but cooling: no call for it
        clock.now += 31
        probe = await pool.acquire("m")
        assert probe is bad  # rested: tried again (it is the least busy, its turn)
        second = await pool.acquire("m")
        assert second is good  # the probe is its only call in flight
        assert pool.failed(bad)  # one more failure cools it again at once
        pool.release(bad, "m")
        pool.release(good, "m")
        assert bad.cooling(clock.now)
        pool.failed(good)
        assert pool.failed(good) and pool.all_cooling()

    asyncio.run(main())


def test_a_cancelled_wait_gives_its_place_back() -> None:
    async def main() -> int:
        pool = pool_of(1, max_concurrency=1)
        held = await pool.acquire("m")
        waiting = asyncio.ensure_future(pool.acquire("m"))
        await asyncio.sleep(0)
        waiting.cancel()
        await asyncio.sleep(0)
        pool.release(held, "m")
        return (await pool.acquire("m")).in_flight

    assert asyncio.run(main()) == 1


# ---------------------------------------------------------------- the spec and the policy


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "ws").mkdir(exist_ok=True)
    (tmp_path / "ws" / "x.py").write_text("x = 1\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + textwrap.dedent(text).lstrip())
    return spec


def problems_of(spec: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        prepare_workflow(load_spec(spec))
    assert info.value.exit_code == 2
    return [problem.render() for problem in info.value.problems]


@pytest.mark.parametrize(
    ("provider", "fragment"),
    [
        ("{kind: openai, base_url: 'http://127.0.0.1:1/v1', base_urls: ['http://127.0.0.1:2/v1', "
         "'http://127.0.0.1:3/v1']}", "either base_url (one host) or base_urls"),
        ("{kind: openai, base_urls: ['http://127.0.0.1:2/v1']}", "providers.pool.base_urls: "),
        ("{kind: openai, base_urls: ['ftp://127.0.0.1:2/v1', 'http://127.0.0.1:3/v1']}", "providers.pool.base_urls.0"),
        ("{kind: openai, base_urls: ['http://127.0.0.1:2/v1', 'http://127.0.0.1:2/v1/']}", "listed twice"),
    ],
)  # fmt: skip
def test_base_urls_shape_problems_name_the_field(tmp_path: Path, provider: str, fragment: str) -> None:
    spec = write(tmp_path, f"providers: {{pool: {provider}}}\nmodels: {{default: pool/m}}\n")
    found = problems_of(spec)
    assert any(fragment in line and "providers.pool" in line for line in found), found


def pool_config(*urls: str, **extra: Any) -> ProviderConfig:
    return ProviderConfig(name="pool", kind="openai", base_url=urls[0], base_urls=urls, **extra)


def test_a_pool_is_local_and_allowed_only_when_every_host_is() -> None:
    confidential = Rules("confidential", None, frozenset(), False, None, False, None)
    here = pool_config("http://127.0.0.1:1/v1", "http://localhost:2/v1")
    mixed = pool_config("http://127.0.0.1:1/v1", "http://GPU-2.example:8000/v1")
    route = Route("pool", "m")
    assert hosts_of(mixed) == ("127.0.0.1", "gpu-2.example")
    assert here.is_local and not mixed.is_local
    assert refusal(route, None, here, confidential) is None
    why = refusal(route, None, mixed, confidential)
    assert why is not None and "gpu-2.example" in why
    allowed = Rules("confidential", None, frozenset(), False, None, False, frozenset({"gpu-2.example"}))
    assert refusal(route, None, mixed, allowed) is None  # every host is the user's own


def test_a_key_goes_to_a_pool_only_when_every_host_may_receive_it() -> None:
    catalog = load_catalog()
    keyed = {"api_key_env": "POOL_KEY"}
    trusted_key = frozenset({"POOL_KEY"})
    here = pool_config("http://127.0.0.1:1/v1", "http://localhost:2/v1", **keyed)
    assert untrusted(here, catalog, trusted_keys=trusted_key) is None  # a provider of the spec's own, on loopback
    mixed = pool_config("http://127.0.0.1:1/v1", "https://gpu-2.example/v1", **keyed)
    refused = untrusted(mixed, catalog, trusted_keys=trusted_key)
    assert refused is not None and refused[0] == "base_urls" and "gpu-2.example" in refused[1]
    assert untrusted(mixed, catalog, frozenset({"gpu-2.example"}), trusted_key) is None


def test_resolution_carries_the_pool_and_its_limits(tmp_path: Path) -> None:
    urls = ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1", "http://localhost:3/v1"]
    spec = write(
        tmp_path,
        f"providers: {{pool: {{kind: openai, base_urls: {json.dumps(urls)}, max_concurrency: 2, "
        "host_cooldown_s: 5}}\nmodels: {default: pool/m}\n",
    )
    config = prepare_workflow(load_spec(spec)).providers["pool"]
    assert config.base_urls == tuple(urls) and config.base_url == urls[0] and config.is_pool
    assert config.max_concurrency == 2 and config.host_cooldown_s == 5 and config.is_local
    assert config.at(urls[2]).base_url == urls[2] and not config.at(urls[2]).is_pool


# ---------------------------------------------------------------- real servers on loopback


@pytest.fixture
def servers() -> Iterator[list[ModelServer]]:
    running = [ModelServer({"m": "canned"}) for _ in range(3)]
    for server in running:
        server.state.delay_s = 0.1  # calls overlap: each host answers one at a time, slowly
        server.__enter__()
    try:
        yield running
    finally:
        for server in running:
            server.__exit__()


def pool_spec(tmp_path: Path, urls: list[str], limits: str = "", provider: str = "", concurrency: int = 6) -> Path:
    roles = "roles:\n  work: {output: text, prompt: 'do $instruction'}\n"
    tasks = "".join(f"  - {{role: work, instruction: t{i}}}\n" for i in range(TASKS))
    listed = ", ".join(f"'{url}/v1'" for url in urls)
    return write(
        tmp_path,
        f"providers: {{pool: {{kind: openai, base_urls: [{listed}], max_concurrency: 2{provider}}}}}\n"
        f"{roles}models: {{planner: pool/m, work: pool/m}}\ntasks:\n{tasks}"
        f"limits: {{concurrency: {concurrency}{limits}}}\nfail_on: none\n",
    )


def run(spec: Path, out: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return orchestrator("run", spec, "--output-dir", out, "--no-cache", env=env)


def result_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "result.json").read_text())


def model_spans(result: dict[str, Any]) -> list[dict[str, Any]]:
    calls = [*result["subtasks"], result["aggregate"]]
    return [s for call in calls for s in (call.get("timing") or {}).get("spans", []) if s["kind"] == "model"]


def test_calls_spread_over_every_host_and_no_host_passes_its_limit(servers: list[ModelServer], tmp_path: Path) -> None:
    done = run(pool_spec(tmp_path, [s.url for s in servers], concurrency=TASKS), tmp_path / "out")
    assert done.returncode == 0, done.stderr
    served = [s.state.requests["m"] for s in servers]
    assert all(count > 0 for count in served) and sum(served) == TASKS + 1  # the subtasks and the aggregation
    peaks = [s.state.max_in_flight for s in servers]
    assert max(peaks) == 2, peaks  # 12 calls at once, 3 hosts: 2 at a time on each (per host, not per provider)
    result = result_of(tmp_path / "out")
    assert all(s["status"] == "ok" for s in result["subtasks"])
    names = {s.url.removeprefix("http://") for s in servers}
    reported = {h["host"]: h["requests"] for h in result["egress"]["hosts"]}
    assert {name: reported.get(name) for name in names} == {
        s.url.removeprefix("http://"): s.state.requests["m"] for s in servers
    }
    hosts_named = {span["detail"].rpartition("host ")[2] for span in model_spans(result)}
    assert hosts_named == names  # each call's record names the host that answered it


@pytest.mark.parametrize("failure", ["503", "refused"])
def test_a_failing_host_cools_down_and_the_others_finish_the_run(
    servers: list[ModelServer], tmp_path: Path, failure: str
) -> None:
    bad = servers[1]
    if failure == "503":
        bad.fault("status", status=503, times=1000)
        dead = bad.url
    else:
        dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused
    urls = [servers[0].url, dead, servers[2].url]
    spec = pool_spec(tmp_path, urls, limits=", cooldown_after: 2, backoff_s: 0", provider=", host_cooldown_s: 600")
    done = run(spec, tmp_path / "out")
    assert done.returncode == 0, done.stderr
    result = result_of(tmp_path / "out")
    assert [s["status"] for s in result["subtasks"]] == ["ok"] * TASKS and result["aggregate"]["status"] == "ok"
    sent = {h["host"]: h["requests"] for h in result["egress"]["hosts"]}
    tried = bad.state.requests["m"] if failure == "503" else sent.get(dead.removeprefix("http://"), 0)
    assert 1 <= tried <= 2  # cooled down after cooldown_after failures in a row, never tried again
    assert sum(s.state.requests["m"] for s in (servers[0], servers[2])) == TASKS + 1
    assert any(s["attempts"] > 1 for s in result["subtasks"])  # a failed call was retried on another host


def test_a_pool_with_a_host_the_policy_refuses_keeps_confidential_data_home(
    servers: list[ModelServer], tmp_path: Path
) -> None:
    spec = pool_spec(tmp_path, [servers[0].url, "http://gpu-2.example:8000"])
    text = spec.read_text() + "policy:\n  roles: {work: {data_class: confidential}}\n"
    spec.write_text(text)
    done = orchestrator("validate", spec)
    assert done.returncode == 5, done.stderr
    assert "'work [confidential]' has no allowed model" in done.stderr and "gpu-2.example" in done.stderr
    spec.write_text(text.replace("http://gpu-2.example:8000", servers[1].url))  # both hosts on this machine
    assert orchestrator("validate", spec).returncode == 0
    assert sum(s.state.requests["m"] for s in servers) == 0  # validate calls nothing


def test_pull_request_mode_refuses_each_host_of_a_pool_the_spec_introduces(
    servers: list[ModelServer], tmp_path: Path
) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    port = servers[1].url.rpartition(":")[2]
    spec = pool_spec(tmp_path, [servers[0].url, f"http://localhost:{port}"])
    done = run(spec, tmp_path / "out", env=PR)
    assert done.returncode == 5, done.stderr
    assert f"{spec}:5: providers.pool.base_urls.0: pull-request mode" in done.stderr
    assert "refuses host 127.0.0.1" in done.stderr and "refuses host localhost" in done.stderr
    operator = tmp_path / "operator.yaml"
    operator.write_text("trusted_hosts: [127.0.0.1]\n")
    partly = orchestrator("validate", spec, "--policy", operator, env=PR)
    assert partly.returncode == 5 and "providers.pool.base_urls.1" in partly.stderr  # one trusted host is not enough
    assert "refuses host 127.0.0.1" not in partly.stderr
    operator.write_text("trusted_hosts: [127.0.0.1, localhost]\n")
    assert orchestrator("validate", spec, "--policy", operator, env=PR).returncode == 0
    assert sum(s.state.requests["m"] for s in servers) == 0  # not one byte was sent
