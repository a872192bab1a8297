"""Claude and GPT, the closed US frontier models: in the catalog with routes on OpenRouter and on
their vendors' own endpoints, listed by `orchestrator models`, kept off confidential files by the
policy (examples/sovereign-mix.yaml shows the split), and their API keys sent only to their
vendors' hosts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.catalog import Catalog, ProviderConfig, load_catalog
from orchestrator.policy import untrusted
from orchestrator.spec import load_spec
from orchestrator.workflow import default_providers, prepare_workflow
from orchestrator.workflow._prepare import needs
from tests.process import orchestrator
from tests.servers.model_server import ModelServer

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sovereign-mix.yaml"
API_KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY", "DEEPSEEK_API_KEY")

# catalog id -> (vendor provider, vendor model id, OpenRouter slug, USD per million tokens in/out, window)
FRONTIER = {
    "claude-sonnet-4.5": ("anthropic", "claude-sonnet-4-5", "anthropic/claude-sonnet-4.5", (3.0, 15.0), 200_000),
    "claude-haiku-4.5": ("anthropic", "claude-haiku-4-5", "anthropic/claude-haiku-4.5", (1.0, 5.0), 200_000),
    "gpt-5": ("openai", "gpt-5", "openai/gpt-5", (1.25, 10.0), 400_000),
    "gpt-5-mini": ("openai", "gpt-5-mini", "openai/gpt-5-mini", (0.25, 2.0), 400_000),
}
VENDORS = {
    "anthropic": ("https://api.anthropic.com/v1/", "ANTHROPIC_API_KEY", ("api.anthropic.com",)),
    "openai": ("https://api.openai.com/v1", "OPENAI_API_KEY", ("api.openai.com",)),
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture
def no_api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither this process nor the CLI it starts holds an API key (validation must not need one)."""
    for name in API_KEYS:
        monkeypatch.delenv(name, raising=False)


# ---------------------------------------------------------------- the catalog


@pytest.mark.parametrize("model_id", list(FRONTIER))
def test_claude_and_gpt_are_us_closed_weights_models_on_openrouter_and_their_vendor(
    catalog: Catalog, model_id: str
) -> None:
    vendor, vendor_model, slug, (price_in, price_out), window = FRONTIER[model_id]
    entry = catalog.get(model_id)
    assert entry is not None
    assert (entry.country, entry.open_weights, entry.license) == ("US", False, "Proprietary")
    assert entry.lab == ("Anthropic" if vendor == "anthropic" else "OpenAI")
    assert entry.context_window == window
    assert {"coding", "vision"} <= set(entry.strengths)
    routes = {(r.provider, r.model): r for r in entry.routes}
    assert set(routes) == {("openrouter", slug), (vendor, vendor_model)}
    for route in routes.values():  # the vendor's list price, the same on OpenRouter
        assert route.price is not None and (route.price.input, route.price.output) == (price_in, price_out)
    assert catalog.resolve(model_id).ref == f"openrouter/{slug}"  # the default route
    assert catalog.resolve(f"{vendor}/{vendor_model}").catalog_id == model_id
    assert catalog.resolve(f"openrouter/{slug}").catalog_id == model_id


def test_no_closed_weights_model_can_be_served_from_this_machine(catalog: Catalog) -> None:
    """What keeps them off confidential files: every route is a remote API (no local/ollama)."""
    closed = catalog.filter(open_weights=False)
    assert set(FRONTIER) <= {entry.id for entry in closed}
    for entry in closed:
        assert entry.routes, entry.id
        for route in entry.routes:
            provider = catalog.providers[route.provider]
            assert provider.kind in ("openai", "anthropic") and provider.base_url, (entry.id, route.provider)
            assert provider.base_url.startswith("https://") and provider.api_key_env, (entry.id, route.provider)


@pytest.mark.parametrize("name", list(VENDORS))
def test_vendor_providers_and_what_their_kind_supports(catalog: Catalog, name: str) -> None:
    """`openai` is both a provider name and a kind, as `ollama` and `local` are: no clash."""
    base_url, key, hosts = VENDORS[name]
    entry = catalog.providers[name]
    assert (entry.kind, entry.base_url, entry.api_key_env, entry.hosts) == ("openai", base_url, key, hosts)
    config = default_providers()[name]
    assert config.kind == "openai" and config.host == hosts[0]
    assert config.native_tools  # both APIs call tools natively (OpenAI's tool_calls format)
    assert not config.is_local and not config.costed_by_time  # priced per token, never local


def test_orchestrator_models_country_us_lists_them() -> None:
    done = orchestrator("models", "--country", "US")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines()[1:]}
    for model_id, (vendor, vendor_model, slug, _, _) in FRONTIER.items():
        assert model_id in rows, done.stdout
        assert f"openrouter/{slug}" in rows[model_id] and f"{vendor}/{vendor_model}" in rows[model_id]
        assert " no " in rows[model_id]  # the `open` column
    as_json = orchestrator("models", "--country", "US", "--json")
    entries = {e["id"]: e for e in json.loads(as_json.stdout)}
    assert all(entries[m]["open_weights"] is False and entries[m]["country"] == "US" for m in FRONTIER)
    claude = orchestrator("models", "--provider", "anthropic", "--json")
    assert {e["id"] for e in json.loads(claude.stdout)} == {"claude-sonnet-4.5", "claude-haiku-4.5"}


# ---------------------------------------------------------------- the policy


PINNED = """
version: 1
name: frontier
goal: Review the code.
workspace: ws
tasks:
  - {role: architecture_review, instruction: Review the module boundaries., files: [FILE]}
models:
  planner: local/smollm2
  architecture_review: MODEL
policy:
  files: {'lib/**': confidential}
fail_on: none
"""


@pytest.mark.parametrize(
    ("model", "host"),
    [
        ("anthropic/claude-sonnet-4-5", "api.anthropic.com"),
        ("openrouter/anthropic/claude-sonnet-4.5", "openrouter.ai"),
        ("claude-haiku-4.5", "openrouter.ai"),  # a catalog id: its default route
        ("openai/gpt-5", "api.openai.com"),
    ],
)
def test_a_confidential_file_is_never_routed_to_a_closed_frontier_model(
    write_spec: Any, no_api_keys: None, model: str, host: str
) -> None:
    route = load_catalog().resolve(model)
    spec = write_spec(PINNED.replace("MODEL", model).replace("FILE", "lib/util.py"))
    done = orchestrator("validate", spec)
    assert done.returncode == 5, done.stderr
    assert "'architecture_review [confidential]' has no allowed model" in done.stderr
    assert "it sees files of class confidential (lib/util.py)" in done.stderr
    why = f"confidential data stays on this machine and allow_hosts; {route.provider} is served from {host}"
    assert f"{route.ref}: {why}" in done.stderr
    # the same role on a file that is not confidential may use it
    spec.write_text(spec.read_text().replace("files: [lib/util.py]", "files: [app.py]"))
    allowed = orchestrator("validate", spec, "--json")
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["chains"]["architecture_review"] == [route.ref]


def test_the_sovereign_mix_example_validates_without_keys_and_routes_review_to_claude(no_api_keys: None) -> None:
    done = orchestrator("validate", EXAMPLE, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    chains = report["chains"]
    # Anthropic's own API first, pinned to its US geography, then OpenRouter's European endpoint
    claude = ["claude/claude-opus-4-6", "openrouter/anthropic/claude-sonnet-4.5"]
    assert chains["architecture_review"][:2] == claude
    pinned = report["pinned"]["architecture_review"]
    assert pinned["claude/claude-opus-4-6"]["request"] == {"inference_geo": "us"}
    assert pinned["openrouter/anthropic/claude-sonnet-4.5"]["base_url"] == "https://eu.openrouter.ai/api/v1"
    assert chains["refactor"][0].startswith("ollama/qwen3-coder")
    assert chains["debug"] == ["ollama/deepseek-r1:14b"]  # DeepSeek's API does not say where it serves
    (deepseek,) = report["excluded_by_policy"]["debug"]
    assert deepseek["model"] == "deepseek/deepseek-v4-pro" and deepseek["reason"].startswith("serving_regions europe")
    assert chains["arabic_docs"][0] == "ollama/jais"
    # at the confidential class (the pricing rules) Claude and every other API route is refused
    refused = {e["model"]: e["reason"] for e in report["excluded_by_policy"]["architecture_review [confidential]"]}
    assert set(refused) == set(chains["architecture_review"])
    assert all(reason.startswith("confidential data stays on this machine") for reason in refused.values())
    dry = orchestrator("run", EXAMPLE, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["chains"] == chains


def test_the_sovereign_mix_example_keeps_confidential_work_on_local_open_weights_models(no_api_keys: None) -> None:
    workflow = prepare_workflow(load_spec(EXAMPLE))
    catalog = load_catalog()
    assert workflow.file_classes["inventory/pricing.py"] == "confidential"
    assert workflow.file_classes["inventory/store.py"] == "internal"
    at = {need.role: need.data_class for need in needs(workflow) if need.node is None}
    assert at == {
        "planner": "confidential",  # it aggregates what every subtask saw
        "architecture_review": "internal",
        "refactor": "confidential",
        "debug": "internal",
        "arabic_docs": "confidential",
    }
    for role, data_class in at.items():
        chain = workflow.chains.chain(role, data_class)
        assert chain, role
        entries = [catalog.entry_for(route) for route in chain]
        if role == "architecture_review":
            first = entries[0]
            assert first is not None and first.id == "claude-opus-4.6" and not first.open_weights
        else:  # Qwen, DeepSeek, Jais, Falcon, Devstral: open weights; at confidential, this machine only
            assert all(e is not None and e.open_weights and e.country != "US" for e in entries), role
        if data_class == "confidential":
            assert all(workflow.providers[route.provider].is_local for route in chain), (role, chain)
    anthropic = workflow.providers["anthropic"]  # the catalog puts the schema in the prompt for this endpoint
    assert anthropic.structured_output == "json_object"
    assert (anthropic.base_url, anthropic.api_key_env) == ("https://api.anthropic.com/v1/", "ANTHROPIC_API_KEY")


# ---------------------------------------------------------------- the keys


def config(name: str, base_url: str, key: str) -> ProviderConfig:
    return ProviderConfig(name=name, kind="openai", base_url=base_url, api_key_env=key)


@pytest.mark.parametrize(
    ("provider", "base_url", "key", "field", "words"),
    [
        ("anthropic", "https://api.anthropic.com/v1/", "ANTHROPIC_API_KEY", None, ""),
        ("openai", "https://api.openai.com/v1", "OPENAI_API_KEY", None, ""),
        ("anthropic", "https://evil.example/v1", "ANTHROPIC_API_KEY", "base_url", "would be sent to evil.example"),
        ("anthropic", "https://api.openai.com/v1", "ANTHROPIC_API_KEY", "base_url", "sent to api.openai.com"),
        ("anthropic", "http://127.0.0.1:8080/v1", "ANTHROPIC_API_KEY", "base_url", "sent to 127.0.0.1"),
        ("openai", "https://api.anthropic.com/v1/", "OPENAI_API_KEY", "base_url", "sent to api.anthropic.com"),
        ("openai", "https://api.openai.com/v1", "ANTHROPIC_API_KEY", "api_key_env", "its key is OPENAI_API_KEY"),
        ("openrouter", "https://openrouter.ai/api/v1", "ANTHROPIC_API_KEY", "api_key_env", "OPENROUTER_API_KEY"),
        ("mine", "https://api.anthropic.com/v1/", "ANTHROPIC_API_KEY", "api_key_env", "no documented key"),
    ],
)
def test_a_vendor_key_goes_only_to_its_vendors_host(
    catalog: Catalog, provider: str, base_url: str, key: str, field: str | None, words: str
) -> None:
    refused = untrusted(config(provider, base_url, key), catalog)
    assert (refused[0] if refused else None) == field
    assert refused is None or words in refused[1]


def test_the_operator_may_trust_another_host_for_the_anthropic_key(catalog: Catalog) -> None:
    elsewhere = config("anthropic", "https://gateway.corp.example/v1", "ANTHROPIC_API_KEY")
    assert untrusted(elsewhere, catalog) is not None
    assert untrusted(elsewhere, catalog, trusted=frozenset({"gateway.corp.example"})) is None


REDIRECT = """
version: 1
name: redirect
goal: Review the code.
workspace: ws
graph: review-only
providers:
  PROVIDER
tasks: [{role: architecture_review, instruction: Review the module boundaries.}]
models: {architecture_review: MODEL, planner: MODEL}
fail_on: none
"""


@pytest.mark.parametrize(
    ("provider", "model", "field"),
    [
        (
            "anthropic: {base_url: 'URL/v1', structured_output: json_schema}",  # the test server's mode
            "anthropic/claude-sonnet-4-5",
            "providers.anthropic.base_url",
        ),
        (
            "mine: {kind: openai, base_url: 'URL/v1', api_key_env: ANTHROPIC_API_KEY}",
            "mine/claude-sonnet-4-5",
            "providers.mine.api_key_env",
        ),
    ],
)
def test_a_spec_cannot_send_the_anthropic_key_anywhere_else(
    write_spec: Any, tmp_path: Path, provider: str, model: str, field: str
) -> None:
    """Not even to this machine: the server a spec names receives nothing unless the operator
    trusts it outside the spec."""
    secret = {"ANTHROPIC_API_KEY": "sk-ant-test-0000000000000000"}
    with ModelServer({"claude-sonnet-4-5": "canned"}) as server:
        spec = write_spec(REDIRECT.replace("PROVIDER", provider.replace("URL", server.url)).replace("MODEL", model))
        done = orchestrator("run", spec, "--output-dir", tmp_path / "out", env=secret)
        assert done.returncode == 2, done.stderr
        assert field in done.stderr and "ORCHESTRATOR_TRUSTED_" in done.stderr
        assert sum(server.state.requests.values()) == 0 and not server.state.bodies  # nothing was sent
        trusted = {
            **secret,
            "ORCHESTRATOR_TRUSTED_HOSTS": "127.0.0.1",
            "ORCHESTRATOR_TRUSTED_KEYS": "ANTHROPIC_API_KEY",
        }
        ran = orchestrator("run", spec, "--output-dir", tmp_path / "trusted", env=trusted)
        assert ran.returncode == 0, ran.stderr  # the operator's choice, made outside the spec
        assert server.state.requests["claude-sonnet-4-5"] >= 1


def test_pull_request_mode_accepts_the_catalogs_vendor_hosts(write_spec: Any, no_api_keys: None) -> None:
    """The vendors' endpoints are the catalog's, not hosts a spec introduces."""
    models = "[anthropic/claude-sonnet-4-5, openai/gpt-5]"
    spec = write_spec(PINNED.replace("MODEL", models).replace("FILE", "app.py"))
    done = orchestrator("validate", spec, "--untrusted")
    assert done.returncode == 0, done.stderr


def test_openais_own_api_gets_max_completion_tokens_and_every_other_endpoint_max_tokens() -> None:
    from orchestrator.models import CallSettings
    from orchestrator.providers.openai import OpenAICompatibleProvider

    catalog = load_catalog()
    kind, settings = OpenAICompatibleProvider(), CallSettings(max_output_tokens=321)
    for name, field in (("openai", "max_completion_tokens"), ("openrouter", "max_tokens"), ("anthropic", "max_tokens")):
        entry = catalog.providers[name]
        provider = ProviderConfig(name=name, kind="openai", base_url=entry.base_url, hosts=entry.hosts)
        route = next(r for m in catalog.models for r in m.routes if r.provider == name)
        model = kind.chat_model(route, provider, settings)
        assert model.extra_body == {field: 321}, name
