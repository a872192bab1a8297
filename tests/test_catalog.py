"""The model catalog shipped in the package (orchestrator/catalog.yaml) and its resolver."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from orchestrator.catalog import DEFAULT_CONTEXT_WINDOW, Catalog, Route, UnknownModel, load_catalog


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def all_routes(catalog: Catalog) -> set[tuple[str, str]]:
    return {(route.provider, route.model) for entry in catalog.models for route in entry.routes}


def test_catalog_loads(catalog: Catalog) -> None:
    assert len(catalog.models) >= 20
    assert {"local", "ollama", "openrouter"} <= set(catalog.providers)
    assert catalog.providers["local"].kind == "local"
    assert catalog.providers["ollama"].kind == "ollama"
    assert catalog.providers["openrouter"].kind == "openai"
    assert load_catalog() is catalog  # read once per process


def test_ids_are_unique(catalog: Catalog) -> None:
    ids = [entry.id for entry in catalog.models]
    assert len(ids) == len(set(ids))


def test_routes_are_unique_and_use_catalog_providers(catalog: Catalog) -> None:
    pairs = [(route.provider, route.model) for entry in catalog.models for route in entry.routes]
    assert len(pairs) == len(set(pairs)), "a route must lead to one catalog entry"
    unknown = {provider for provider, _ in pairs} - set(catalog.providers)
    assert not unknown


def test_api_providers_have_a_key_and_a_known_host(catalog: Catalog) -> None:
    for name, provider in catalog.providers.items():
        if provider.api_key_env:
            assert provider.base_url and provider.base_url.startswith("https://"), name
            assert provider.hosts, f"{name}: a provider with a key must list its hosts"
            assert urlsplit(provider.base_url).hostname in provider.hosts, name


@pytest.mark.parametrize(
    "model",
    [
        "qwen3.5:27b",
        "deepseek-r1:14b",
        "yi-coder:9b",
        "falcon2",
        "jais",
        "devstral-small:24b",
        "codestral:22b",
        "llama4:scout",
        "gemma4:12b",
    ],
)
def test_required_ollama_routes(catalog: Catalog, model: str) -> None:
    assert ("ollama", model) in all_routes(catalog)


def test_openrouter_free_qwen_route(catalog: Catalog) -> None:
    assert ("openrouter", "qwen/qwen3.6-plus:free") in all_routes(catalog)
    route = catalog.resolve("openrouter/qwen/qwen3.6-plus:free")
    assert route.catalog_id == "qwen3.6"
    assert route.price is not None and (route.price.input, route.price.output) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("country", "families"),
    [
        ("CN", ["qwen", "deepseek", "glm", "kimi", "yi", "minimax", "mimo"]),
        ("AE", ["falcon", "jais"]),
        ("FR", ["mistral", "devstral", "codestral"]),
        ("DE", ["pharia"]),
        ("SE", ["gpt-sw3"]),
        ("US", ["llama", "gemma", "gpt-oss", "smollm"]),
        ("SG", ["sea-lion"]),
        ("ZA", ["inkubalm"]),
        ("KR", ["exaone"]),
        ("IN", ["sarvam"]),
    ],
)
def test_sovereign_map_families_by_country(catalog: Catalog, country: str, families: list[str]) -> None:
    ids = [entry.id for entry in catalog.filter(country=country)]
    for family in families:
        assert any(model_id.startswith(family) for model_id in ids), f"{family} missing from {country}: {ids}"


def test_entries_are_well_formed(catalog: Catalog) -> None:
    for entry in catalog.models:
        assert len(entry.country) == 2 and entry.country.isupper(), entry.id
        assert entry.lab and entry.license and entry.name, entry.id
        assert entry.context_window is None or entry.context_window > 0, entry.id
        for route in entry.routes:
            assert route.model and not route.model.startswith("/"), entry.id
            if route.price is not None:
                assert route.price.input >= 0 and route.price.output >= 0


# ---------------------------------------------------------------- resolve


def test_catalog_id_resolves_to_first_route_with_window_and_price(catalog: Catalog) -> None:
    routed = [entry for entry in catalog.models if entry.routes]
    assert routed
    for entry in routed:
        first = entry.routes[0]
        route = catalog.resolve(entry.id)
        assert (route.provider, route.model) == (first.provider, first.model), entry.id
        assert route.catalog_id == entry.id
        assert route.context_window == (entry.context_window or DEFAULT_CONTEXT_WINDOW)
        assert route.price == first.price


def test_catalog_id_examples(catalog: Catalog) -> None:
    assert catalog.resolve("deepseek-r1") == Route(
        provider="ollama", model="deepseek-r1:14b", catalog_id="deepseek-r1", context_window=131072
    )
    assert catalog.resolve("qwen3.6").ref == "ollama/qwen3.5:27b"
    assert catalog.resolve("devstral").ref == "ollama/devstral-small:24b"
    assert catalog.resolve("  qwen3.6 ").catalog_id == "qwen3.6"


def test_product_example_id_jais_resolves(catalog: Catalog) -> None:
    assert catalog.resolve("jais").ref == "ollama/jais"


def test_smollm2_is_the_embedded_model(catalog: Catalog) -> None:
    route = catalog.resolve("smollm2")
    assert route.ref == "local/smollm2"
    assert route.catalog_id == "smollm2"
    assert catalog.entry_for(route) is catalog.get("smollm2")


@pytest.mark.parametrize(
    ("ref", "provider", "model", "catalog_id"),
    [
        ("openrouter/z-ai/glm-5.1", "openrouter", "z-ai/glm-5.1", "glm-5.1"),
        ("ollama/qwen3:8b", "ollama", "qwen3:8b", None),
        ("ollama/falcon2", "ollama", "falcon2", "falcon"),
        ("deepseek/deepseek-v4-pro", "deepseek", "deepseek-v4-pro", "deepseek-v4"),
    ],
)
def test_provider_model_routes(catalog: Catalog, ref: str, provider: str, model: str, catalog_id: str | None) -> None:
    route = catalog.resolve(ref)
    assert (route.provider, route.model, route.catalog_id) == (provider, model, catalog_id)
    assert route.ref == ref


def test_known_route_carries_entry_window_and_price(catalog: Catalog) -> None:
    route = catalog.resolve("deepseek/deepseek-v4-pro")
    entry = catalog.get("deepseek-v4")
    assert entry is not None
    assert route.context_window == entry.context_window
    assert route.price is not None and route.price.input > 0 and route.price.output > 0
    assert catalog.entry_for(route) is entry


def test_route_unknown_to_catalog_gets_default_window(catalog: Catalog) -> None:
    route = catalog.resolve("ollama/some-private-model:7b")
    assert route.context_window == DEFAULT_CONTEXT_WINDOW
    assert route.price is None
    assert catalog.entry_for(route) is None


def test_spec_provider_names_make_routes(catalog: Catalog) -> None:
    with pytest.raises(UnknownModel):
        catalog.resolve("myvllm/qwen3")
    assert catalog.resolve("myvllm/qwen3", {"myvllm"}).ref == "myvllm/qwen3"


@pytest.mark.parametrize(
    ("ref", "fragments"),
    [
        ("deepseek-r2", ["deepseek-r2", "did you mean", "'deepseek-r1'"]),
        ("qwen3.7", ["did you mean", "'qwen3.6'"]),
        ("olama/qwen3:8b", ["'olama'", "did you mean", "'ollama'"]),
        ("nowhere/model", ["'nowhere'"]),
        ("ollama/", ["ollama"]),
        ("pharia", ["pharia"]),  # in the catalog, but without any route
    ],
)
def test_unknown_models(catalog: Catalog, ref: str, fragments: list[str]) -> None:
    with pytest.raises(UnknownModel) as info:
        catalog.resolve(ref)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_unknown_model_is_a_value_error() -> None:
    assert issubclass(UnknownModel, ValueError)


# ---------------------------------------------------------------- filter


@pytest.mark.parametrize("country", ["AE", "ae", "FR", "CN"])
def test_filter_by_country(catalog: Catalog, country: str) -> None:
    found = catalog.filter(country=country)
    assert found
    assert all(entry.country == country.upper() for entry in found)
    assert len(found) == sum(entry.country == country.upper() for entry in catalog.models)


@pytest.mark.parametrize("strength", ["arabic", "Arabic", "coding"])
def test_filter_by_strength(catalog: Catalog, strength: str) -> None:
    found = catalog.filter(strength=strength)
    assert found
    assert all(strength.lower() in entry.strengths for entry in found)
    assert len(found) == sum(strength.lower() in entry.strengths for entry in catalog.models)


def test_filter_arabic_includes_jais(catalog: Catalog) -> None:
    assert any(entry.id.startswith("jais") for entry in catalog.filter(strength="arabic"))


def test_filter_by_open_weights_partitions_the_catalog(catalog: Catalog) -> None:
    open_ = catalog.filter(open_weights=True)
    closed = catalog.filter(open_weights=False)
    assert all(entry.open_weights for entry in open_)
    assert not any(entry.open_weights for entry in closed)
    assert len(open_) + len(closed) == len(catalog.models)


def test_filters_combine(catalog: Catalog) -> None:
    found = catalog.filter(country="FR", strength="coding", open_weights=True)
    ids = {entry.id for entry in found}
    assert {"devstral", "codestral"} <= ids
    assert all(e.country == "FR" and "coding" in e.strengths and e.open_weights for e in found)
    assert catalog.filter(country="FR", strength="arabic") == []


def test_filter_by_provider(catalog: Catalog) -> None:
    found = catalog.filter(provider="deepseek")
    assert found
    assert all(any(route.provider == "deepseek" for route in entry.routes) for entry in found)


def test_no_filter_returns_everything_in_order(catalog: Catalog) -> None:
    assert catalog.filter() == list(catalog.models)
