"""The providers a run may call: the catalog's, merged with the spec's, each with the traits its
kind declares (in-process, self-hosted), and with the key-host rule applied (policy.trust)."""

from __future__ import annotations

from dataclasses import replace

from orchestrator.catalog import Catalog, ProviderConfig, load_catalog
from orchestrator.catalog.provider import HOST_COOLDOWN_S, hosts_of
from orchestrator.catalog.serving import host_servings, serving_of
from orchestrator.errors import PluginError, Problem
from orchestrator.models.registry import DISABLE_ENV, ProviderTraits, registry
from orchestrator.policy import untrusted
from orchestrator.spec import LoadedSpec, close_match
from orchestrator.spec._serving import ServingSpec
from orchestrator.spec.operator import Operator


def _traits(kind: str) -> ProviderTraits:
    """What the kind declares about its providers (nothing, when it cannot be loaded)."""
    try:
        return registry.get(kind, calling=False).traits
    except (KeyError, PluginError):
        return ProviderTraits()


def default_providers() -> dict[str, ProviderConfig]:
    """The providers the catalog defines, before any spec changes them."""
    return {
        name: ProviderConfig(
            name=name,
            kind=e.kind,
            base_url=e.base_url,
            api_key_env=e.api_key_env,
            hosts=e.hosts,
            max_concurrency=e.max_concurrency,
            compact_output=e.compact_output,
            structured_output=e.structured_output,
            in_process=_traits(e.kind).in_process,
            self_hosted=_traits(e.kind).self_hosted,
            native_tools=_traits(e.kind).native_tools,
            serving=serving_of(e.serving, "catalog") if e.serving is not None else None,
            host_serving=host_servings(e.serving, "catalog") if e.serving is not None else (),
            gateway=e.gateway.record() if e.gateway is not None else None,
        )
        for name, e in load_catalog().providers.items()
    }


def merge_providers(
    loaded: LoadedSpec,
    catalog: Catalog,
    problems: list[Problem],
    trusted: frozenset[str] = frozenset(),
    trusted_keys: frozenset[str] = frozenset(),
) -> dict[str, ProviderConfig]:
    providers = default_providers()
    kinds = registry.names()
    for name, override in loaded.spec.providers.items():
        base = providers.get(name)
        kind = override.kind or (base.kind if base else None)
        if kind is None:
            problems.append(loaded.problem(("providers", name), f"new provider needs a kind ({', '.join(kinds)})"))
            continue
        if kind not in kinds:
            broken = registry.broken.get(kind)
            why = (
                f"plugin {broken} (fix or uninstall it, or switch it off with {DISABLE_ENV}={kind})"
                if broken
                else f"unknown provider kind '{kind}'{close_match(kind, kinds)}"
            )
            problems.append(loaded.problem(("providers", name, "kind"), why))
            continue
        pool = tuple(override.base_urls or ())
        config = ProviderConfig(
            name=name,
            kind=kind,
            # a pool's first host is its base_url (what reports show); every host is in base_urls
            base_url=override.base_url or (pool[0] if pool else (base.base_url if base else None)),
            base_urls=pool or (base.base_urls if base and not override.base_url else ()),
            api_key_env=override.api_key_env or (base.api_key_env if base else None),
            hosts=base.hosts if base else (),
            max_concurrency=override.max_concurrency or (base.max_concurrency if base else None),
            max_concurrency_per_model=override.max_concurrency_per_model,
            compact_output=override.compact_output
            if override.compact_output is not None
            else bool(base and base.compact_output),
            structured_output=override.structured_output or (base.structured_output if base else None),
            usd_per_hour=override.usd_per_hour
            if override.usd_per_hour is not None
            else (base.usd_per_hour if base else 0.0),
            max_loaded_models=override.max_loaded_models,
            host_cooldown_s=override.host_cooldown_s or (base.host_cooldown_s if base else HOST_COOLDOWN_S),
            in_process=_traits(kind).in_process,
            self_hosted=_traits(kind).self_hosted,
            native_tools=_native_tools(kind, override.tool_calling),
            serving=base.serving if base else None,
            host_serving=base.host_serving if base else (),
            gateway=base.gateway if base and base.kind == kind else None,
        )
        if config.serving is not None and not set(hosts_of(config)) <= set(config.hosts):
            # the catalog's facts are those of its hosts: another host serves from where it says
            config = replace(config, serving=None, host_serving=())
        refused = untrusted(config, catalog, trusted, trusted_keys)
        if refused:
            problems.append(loaded.problem(("providers", name, refused[0]), refused[1]))
        providers[name] = config
    return providers


def declare_serving(providers: dict[str, ProviderConfig], loaded: LoadedSpec, operator: Operator) -> None:
    """Where each provider serves: the operator's declaration, else the spec's (not in pull-request
    mode, where the spec's word about where its data goes is not taken), else the catalog's."""
    for name, config in providers.items():
        declared: tuple[ServingSpec, str] | None = None
        spec_side = loaded.spec.providers.get(name)
        if spec_side is not None and spec_side.serving is not None and not operator.untrusted:
            declared = (spec_side.serving, "spec")
        if name in operator.policy.providers:
            declared = (operator.policy.providers[name].serving, "operator")
        if declared is None:
            continue
        facts, origin = declared
        config = replace(config, host_serving=host_servings(facts, origin) or config.host_serving)
        if facts.has_facts:
            config = replace(config, serving=serving_of(facts, origin))
        if facts.upstreams and config.gateway is not None:
            upstreams = tuple((up, serving_of(f, origin)) for up, f in sorted(facts.upstreams.items()))
            config = replace(config, gateway=replace(config.gateway, upstreams=upstreams))
        providers[name] = config


def _native_tools(kind: str, tool_calling: str | None) -> bool:
    """Native tool calls when the kind has them, unless the spec asks for the grammar path."""
    if tool_calling is not None:
        return tool_calling == "native" and _traits(kind).native_tools
    return _traits(kind).native_tools
