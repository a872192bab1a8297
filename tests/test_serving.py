"""Where inference runs (docs/sovereignty.md): serving rules decided at validate, requested in
each call, verified in each answer, reported per call.

The loopback server speaks each vendor's documented shapes (tests/servers/model_server.py):
OpenRouter's request `provider` object (only/order, allow_fallbacks, data_collection, zdr:
https://openrouter.ai/docs/guides/routing/provider-selection) and the top-level `provider` field
of its completion that names the upstream that served it; Anthropic's Messages API with the
`inference_geo` request field and `usage.inference_geo` in the answer
(https://platform.claude.com/docs/en/build-with-claude/data-residency)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.catalog import load_catalog
from orchestrator.errors import PolicyError
from orchestrator.spec import load_spec
from orchestrator.spec.operator import load_operator
from orchestrator.workflow import prepare_workflow
from tests.process import orchestrator
from tests.servers.model_server import ModelServer

UPSTREAMS = "{Mistral: {countries: [FR]}, DeepInfra: {countries: [US]}}"


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer({m: "canned" for m in ("p", "a", "b", "claude-opus-4-6", "claude-sonnet-4-5")}) as running:
        yield running


def write_spec(
    tmp_path: Path, url: str, debug: str, policy: str, providers: str = "", openrouter: str | None = None
) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    (ws / "app.py").write_text("def area(r):\n    return 3 * r * r\n")
    lines = [
        "version: 1",
        "name: serving",
        "goal: Find the bug.",
        "workspace: ws",
        "providers:",
        f"  onprem: {{kind: openai, base_url: '{url}/v1'}}",
        openrouter or f"  openrouter: {{base_url: '{url}/v1', serving: {{upstreams: {UPSTREAMS}}}}}",
        f"  claude: {{base_url: '{url}'}}",
        *([providers] if providers else []),
        "models:",
        "  planner: onprem/p",
        f"  debug: {debug}",
        "tasks:",
        "  - {role: debug, instruction: Why is area wrong?, files: [app.py]}",
        "policy:",
        *(f"  {line}" for line in policy.splitlines()),
        "fail_on: none",
    ]
    spec = tmp_path / "spec.yaml"
    spec.write_text("\n".join(lines) + "\n")
    return spec


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Test keys, the loopback server trusted with them, and no operator policy of this machine."""
    return {
        "OPENROUTER_API_KEY": "test-openrouter",
        "ANTHROPIC_API_KEY": "test-anthropic",
        "ORCHESTRATOR_TRUSTED_HOSTS": "127.0.0.1",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "ORCHESTRATOR_POLICY": "",
        **extra,
    }


def run(tmp_path: Path, spec: Path, *args: str, **extra: str) -> tuple[int, dict[str, Any], str]:
    out = tmp_path / "out"
    done = orchestrator(
        "run", spec, "--output-dir", out, "--format", "json", "--trusted", *args, env=env(tmp_path, **extra)
    )
    result = json.loads((out / "result.json").read_text()) if (out / "result.json").exists() else {}
    return done.returncode, result, done.stderr


def chat_bodies(server: ModelServer, model: str) -> list[dict[str, Any]]:
    return [b for b in map(json.loads, server.state.bodies) if b.get("model") == model]


def debug_call(result: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in result["subtasks"] if s["role"] == "debug")


# ---------------------------------------------------------------- OpenRouter, on the wire


def test_openrouter_answer_from_a_provider_outside_the_rule_is_discarded_and_a_conforming_one_used(
    tmp_path: Path, server: ModelServer
) -> None:
    server.state.served_by.update({"a": "DeepInfra", "b": "Mistral"})  # a: in the US; b: in FR
    spec = write_spec(tmp_path, server.url, "[openrouter/a, openrouter/b]", "serving_countries: [FR, DE]")
    summary = tmp_path / "summary.md"
    formats = ("--format", "markdown", "--format", "html", "--format", "sarif")
    code, result, stderr = run(tmp_path, spec, *formats, GITHUB_STEP_SUMMARY=str(summary))
    assert code == 0, stderr
    # the request carried the pinning: only the upstreams the rule admits, no fallback elsewhere
    for model in ("a", "b"):
        (body,) = chat_bodies(server, model)
        assert body["provider"] == {"allow_fallbacks": False, "only": ["Mistral"], "order": ["Mistral"]}
    call = debug_call(result)
    assert call["status"] == "ok" and call["model"] == "openrouter/b"
    (hop,) = call["fallbacks"]
    assert hop["model"] == "openrouter/a" and hop["error_kind"] == "policy"
    assert "'DeepInfra'" in hop["message"] and "serving_countries DE, FR" in hop["message"]
    assert hop["served"]["reported"] == {"provider": "DeepInfra"} and hop["served"]["region"] == "US"
    assert call["served"]["served_by"] == "Mistral" and call["served"]["region"] == "FR"
    assert call["served"]["pinned"]["request"]["provider"]["only"] == ["Mistral"]
    calls = {(c["model"], c["verdict"]): c for c in result["egress"]["calls"]}
    assert calls[("openrouter/a", "refused")]["served_by"] == "DeepInfra"
    assert calls[("openrouter/b", "used")]["region"] == "FR"
    assert calls[("onprem/p", "used")]["region"] == "this machine"
    # reported: every writer says who served each call, and which answer was refused
    out = tmp_path / "out"
    report = (out / "report.md").read_text()
    assert "| `openrouter/a` | DeepInfra | US | 127.0.0.1 |" in report and "**refused**" in report
    assert "| `openrouter/b` | Mistral | FR | 127.0.0.1 |" in report
    assert "<th>served by</th>" in (out / "report.html").read_text()
    (notification,) = json.loads((out / "findings.sarif").read_text())["runs"][0]["invocations"][0][
        "toolExecutionNotifications"
    ]
    assert notification["properties"] == {
        "subtask": "t1",
        "model": "openrouter/a",
        "servedBy": "DeepInfra",
        "region": "US",
    }
    assert "Refused for residency" in summary.read_text() and "| openrouter/a | DeepInfra | US |" in summary.read_text()


def test_a_refused_answer_with_no_conforming_model_left_exits_5_with_the_reason(
    tmp_path: Path, server: ModelServer
) -> None:
    server.state.served_by["a"] = "DeepInfra"
    policy = "serving_countries: [FR]\ntrains_on_data: false\nretention: none"
    spec = write_spec(tmp_path, server.url, "openrouter/a", policy)
    code, result, stderr = run(tmp_path, spec)
    assert code == 5, stderr
    assert result["status"] == "policy_refused"
    (body,) = chat_bodies(server, "a")
    pinned = {"allow_fallbacks": False, "only": ["Mistral"], "order": ["Mistral"], "data_collection": "deny"}
    assert body["provider"] == {**pinned, "zdr": True}
    call = debug_call(result)
    assert call["status"] == "failed" and call["output"] is None  # the answer was never used
    assert call["fallbacks"][0]["error_kind"] == "policy"
    assert "served by provider 'DeepInfra', outside serving_countries FR" in call["error"]["message"]


def test_an_answer_that_does_not_say_who_served_it_is_refused(tmp_path: Path, server: ModelServer) -> None:
    spec = write_spec(tmp_path, server.url, "openrouter/a", "serving_countries: [FR]")  # no `provider` field
    code, result, _ = run(tmp_path, spec)
    assert code == 5
    assert "did not report its provider" in debug_call(result)["fallbacks"][0]["message"]


# ---------------------------------------------------------------- Anthropic, on the wire


def test_anthropic_inference_geography_is_pinned_and_checked(tmp_path: Path, server: ModelServer) -> None:
    server.state.geo["claude-opus-4-6"] = "global"  # it ran anywhere: not what was asked
    spec = write_spec(tmp_path, server.url, "claude/claude-opus-4-6", "serving_countries: [US]")
    code, result, _ = run(tmp_path, spec)
    assert code == 5
    (body,) = chat_bodies(server, "claude-opus-4-6")
    assert body["inference_geo"] == "us" and body["model"] == "claude-opus-4-6"
    hop = debug_call(result)["fallbacks"][0]
    assert hop["error_kind"] == "policy" and "inference_geo 'global'" in hop["message"]

    server.state.geo["claude-opus-4-6"] = "us"
    code, result, _ = run(tmp_path, spec)  # the cached answer still says global: refused again
    assert code == 5 and debug_call(result)["fallbacks"][0]["error_kind"] == "policy"
    code, result, stderr = run(tmp_path, spec, "--no-cache")
    assert code == 0, stderr
    call = debug_call(result)
    assert call["model"] == "claude/claude-opus-4-6" and call["served"]["region"] == "US"
    assert call["served"]["reported"] == {"inference_geo": "us"}


def test_a_chain_whose_first_route_cannot_be_pinned_falls_to_a_conforming_one(
    tmp_path: Path, server: ModelServer
) -> None:
    """Claude Sonnet 4.5 predates inference_geo (a 400 if asked): refused before any call."""
    server.state.geo["claude-opus-4-6"] = "us"
    chain = "[claude/claude-sonnet-4-5, claude/claude-opus-4-6]"
    spec = write_spec(tmp_path, server.url, chain, "serving_countries: [US]")
    checked = orchestrator("validate", spec, "--trusted", env=env(tmp_path))
    assert checked.returncode == 0, checked.stderr
    assert "debug: claude/claude-opus-4-6\n" in checked.stdout
    assert "removed from debug: claude/claude-sonnet-4-5 (serving_countries US: claude pins only" in checked.stdout
    code, result, _ = run(tmp_path, spec)
    assert code == 0
    assert chat_bodies(server, "claude-sonnet-4-5") == []
    assert debug_call(result)["model"] == "claude/claude-opus-4-6"


# ---------------------------------------------------------------- decided at validate


def test_validate_names_the_rule_that_removed_each_route(tmp_path: Path, server: ModelServer) -> None:
    chain = "[anthropic/claude-sonnet-4-5, mistral/mistral-large-latest, claude/claude-opus-4-6, openrouter/a]"
    spec = write_spec(tmp_path, server.url, chain, "serving_regions: [eu]\ntrains_on_data: false")
    checked = orchestrator("validate", spec, "--trusted", env=env(tmp_path))
    assert checked.returncode == 0, checked.stderr
    removed = [line.strip() for line in checked.stdout.splitlines() if "removed from debug" in line]
    assert len(removed) == 3
    assert removed[0].startswith("removed from debug: anthropic/claude-sonnet-4-5 (serving_regions eu:")
    assert removed[1].startswith("removed from debug: mistral/mistral-large-latest (trains_on_data false:")
    assert removed[2].startswith("removed from debug: claude/claude-opus-4-6 (serving_regions eu; trains_on_data false")
    assert "pinned openrouter/a:" in checked.stdout  # Mistral on OpenRouter is declared in FR: eu
    refused = orchestrator(
        "validate", spec, "--trusted", "--set", "models.debug=claude/claude-opus-4-6", env=env(tmp_path)
    )
    assert refused.returncode == 5
    assert "'debug' has no allowed model" in refused.stderr
    assert "claude/claude-opus-4-6: serving_regions eu; trains_on_data false: no inference geography" in refused.stderr
    assert "(us: serving_regions eu: served in US;" in refused.stderr


def prepared(spec: Path, policy_file: Path | None = None, untrusted: bool = False) -> Any:
    operator = load_operator(policy_file, untrusted, env={"ORCHESTRATOR_TRUSTED_HOSTS": "127.0.0.1"})
    return prepare_workflow(load_spec(spec), operator)


def test_the_operator_floor_wins_over_a_spec_that_relaxes_it(tmp_path: Path) -> None:
    floor = tmp_path / "policy.yaml"
    floor.write_text("serving_countries: [DE, FR]\nroles: {debug: {trains_on_data: false}}\n")
    us_host = "  gpu: {kind: openai, base_url: 'http://10.0.0.7/v1', serving: {countries: [US]}}"
    relaxed = "serving_countries: [DE, FR, US]\nroles: {debug: {trains_on_data: true}}"
    spec = write_spec(tmp_path, "http://127.0.0.1:9", "[gpu/m, openrouter/a, onprem/m]", relaxed, us_host)
    assert [r.ref for r in prepared(spec).chains.base("debug")] == ["gpu/m", "openrouter/a", "onprem/m"]
    workflow = prepared(spec, floor)
    (pinned, local) = workflow.chains.base("debug")
    assert local.ref == "onprem/m" and local.pin is None  # this machine: where the data already is
    assert pinned.ref == "openrouter/a" and pinned.pin is not None
    assert pinned.pin.fields["provider"] == {
        "allow_fallbacks": False,
        "only": ["Mistral"],
        "order": ["Mistral"],
        "data_collection": "deny",  # the operator's trains_on_data: false, which the role relaxed
    }
    (removed,) = workflow.chains.excluded["debug"]
    assert (removed.model, removed.reason.split(" (")[0]) == ("gpu/m", "serving_countries DE, FR: served in US")


def test_the_operators_serving_facts_win_over_the_spec_and_a_pull_request_s_are_not_taken(tmp_path: Path) -> None:
    remote = "  gpu: {kind: openai, base_url: 'http://10.0.0.7/v1', serving: {countries: [DE]}}"
    spec = write_spec(tmp_path, "http://127.0.0.1:9", "[gpu/m, onprem/m]", "serving_countries: [DE]", remote)
    assert [r.ref for r in prepared(spec).chains.base("debug")] == ["gpu/m", "onprem/m"]
    floor = tmp_path / "policy.yaml"
    floor.write_text("providers: {gpu: {serving: {countries: [US]}}}\n")
    workflow = prepared(spec, floor)
    assert [r.ref for r in workflow.chains.base("debug")] == ["onprem/m"]
    (removed,) = workflow.chains.excluded["debug"]
    assert removed.reason.startswith("serving_countries DE: served in US (as the operator says")
    # in pull-request mode the spec's own word about where its host serves is not taken
    untrusted = load_operator(None, True, env={"ORCHESTRATOR_TRUSTED_HOSTS": "127.0.0.1,10.0.0.7"})
    workflow = prepare_workflow(load_spec(spec), untrusted)
    assert [r.ref for r in workflow.chains.base("debug")] == ["onprem/m"]


def test_rules_per_data_class_hold_for_the_calls_that_see_that_class(tmp_path: Path) -> None:
    remote = "  gpu: {kind: openai, base_url: 'http://10.0.0.7/v1', serving: {countries: [FR]}}"
    policy = "\n".join(
        [
            "files: {'app.py': confidential}",
            "allow_hosts: [10.0.0.7]",
            "classes: {confidential: {serving_countries: [DE]}}",
        ]
    )
    spec = write_spec(tmp_path, "http://127.0.0.1:9", "[gpu/m, onprem/m]", policy, remote)
    table = prepared(spec).chains
    assert [r.ref for r in table.chain("debug", "internal")] == ["gpu/m", "onprem/m"]
    assert [r.ref for r in table.chain("debug", "confidential")] == ["onprem/m"]
    assert table.excluded["debug [confidential]"][0].reason.startswith("serving_countries DE: served in FR")


def test_openrouter_s_regional_endpoint_meets_a_region_rule_and_cannot_meet_a_country_rule(tmp_path: Path) -> None:
    catalog_default = "  openrouter: {max_concurrency: 2}"  # openrouter.ai, no upstream declared
    spec = write_spec(tmp_path, "http://127.0.0.1:9", "openrouter/a", "serving_regions: [europe]", "", catalog_default)
    (route,) = prepared(spec).chains.base("debug")
    assert route.pin is not None and route.pin.base_url == "https://eu.openrouter.ai/api/v1"
    assert route.pin.fields == {"provider": {"allow_fallbacks": False}}
    assert route.pin.expect == (("provider", ()),)  # any upstream, but it must say which
    spec = write_spec(tmp_path, "http://127.0.0.1:9", "openrouter/a", "serving_countries: [DE]", "", catalog_default)
    with pytest.raises(PolicyError) as refused:
        prepared(spec)
    assert "openrouter/a: serving_countries DE: no upstream provider of openrouter" in refused.value.message


def test_the_catalog_cites_the_vendor_pages_of_its_serving_facts() -> None:
    catalog = load_catalog()
    for name in ("openrouter", "mistral", "claude"):
        gateway = catalog.providers[name].gateway
        assert gateway is not None and gateway.source.startswith("https://")
    assert "eu.openrouter.ai" in catalog.providers["openrouter"].hosts
