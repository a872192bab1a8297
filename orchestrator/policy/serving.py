"""Where inference runs: the serving rules (`serving_countries`, `serving_regions`, `retention`,
`trains_on_data`) decided per route before any call, requested in each call, and verified in
each answer.

- **Decided.** A route's serving facts come from the operator, the spec or the catalog (the
  route's own, else its provider's; each host of a pool). This machine (the embedded model, a
  loopback host without declared facts) is where the data already is: it meets every rule. A
  route whose facts do not meet the rules is refused, naming the rule.
- **Requested.** A gateway (a provider whose catalog entry has a `gateway`) has no fixed place: its
  hook (`PINNERS`, one per gateway; plugins add theirs with `register_pinner`) pins the request to
  what the rules admit (OpenRouter's `provider` object and regional endpoint, Anthropic's
  `inference_geo`), or the route is refused when it cannot be pinned.
- **Verified.** The answer reports who served it (`served` in the answer's response metadata,
  which each provider kind fills from the vendor's own field): a pinned call whose answer reports
  something else, or nothing, is refused (`ResidencyRefused`, error kind `policy`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from orchestrator.catalog.provider import hosts_of, is_loopback
from orchestrator.catalog.serving import THIS_MACHINE, Gateway, Pinning, Serving, normal_name

if TYPE_CHECKING:
    from orchestrator.catalog import ProviderConfig, Route
    from orchestrator.policy._rules import Rules

Pinner = Callable[["Route", "ProviderConfig", "Rules", Gateway], "Pinning | str"]
PINNERS: dict[str, Pinner] = {}


def register_pinner(hook: str, pinner: Pinner) -> None:
    """The hook a gateway's catalog entry names (`gateway: {hook: NAME}`): it returns the pinning
    that keeps a request where the rules allow, or why that cannot be done."""
    PINNERS[hook] = pinner


def demands(rules: Rules) -> bool:
    """Whether any serving rule holds."""
    return (
        rules.serving_countries is not None
        or rules.serving_regions is not None
        or rules.retention_days is not None
        or rules.no_training
    )


def describe(rules: Rules) -> str:
    """The serving rules in words: `serving_countries DE, FR; trains_on_data false`."""
    parts = []
    if rules.serving_countries is not None:
        parts.append(f"serving_countries {', '.join(sorted(rules.serving_countries)) or '(none)'}")
    if rules.serving_regions is not None:
        parts.append(f"serving_regions {', '.join(sorted(rules.serving_regions)) or '(none)'}")
    if rules.retention_days is not None:
        parts.append(f"retention {'none' if rules.retention_days == 0 else f'{rules.retention_days} days'}")
    if rules.no_training:
        parts.append("trains_on_data false")
    return "; ".join(parts)


def unmet(facts: Serving, rules: Rules, place_only: bool = False) -> list[str]:
    """The serving rules these facts do not meet, each naming the rule and the fact."""
    if facts.origin == THIS_MACHINE.origin:  # where the data already is
        return []
    found = []
    allowed = rules.serving_countries
    if allowed is not None:
        if not facts.countries:
            found.append(f"serving_countries {', '.join(sorted(allowed))}: the serving country is unknown")
        elif not facts.countries <= allowed:
            outside = ", ".join(sorted(facts.countries - allowed))
            found.append(f"serving_countries {', '.join(sorted(allowed))}: served in {outside}")
    regions = rules.serving_regions
    if regions is not None and not facts.in_regions(regions):
        found.append(f"serving_regions {', '.join(sorted(regions))}: served in {facts.where()}")
    if place_only:
        return found
    if rules.retention_days is not None:
        kept = facts.retention_days
        if kept is None or kept > rules.retention_days:
            what = "unknown" if kept is None else f"{kept} days"
            found.append(f"{describe_retention(rules.retention_days)}: prompts are kept {what}")
    if rules.no_training and facts.trains_on_data is not False:
        what = "unknown" if facts.trains_on_data is None else "yes"
        found.append(f"trains_on_data false: whether prompts train models is {what}")
    return found


def terms_unmet(facts: Serving, rules: Rules) -> list[str]:
    """The rules about what is kept and trained on (not about the place) that the facts do not meet."""
    place = unmet(facts, rules, place_only=True)
    return [p for p in unmet(facts, rules) if p not in place]


def describe_retention(days: int) -> str:
    return "retention none" if days == 0 else f"retention {days} days"


def facts_of(route: Route, provider: ProviderConfig, host: str) -> Serving | None:
    """The serving facts of a route on one host (None: unknown)."""
    declared = dict(provider.host_serving).get(host)
    if declared is not None:
        return declared
    if provider.serving is not None and provider.serving.origin != "catalog":
        return provider.serving
    # the catalog's facts of a route hold on the catalog's hosts of its provider, not elsewhere
    if route.serving is not None and set(hosts_of(provider)) <= set(provider.hosts):
        return route.serving
    if provider.serving is not None:
        return provider.serving
    if provider.in_process or (host and is_loopback(host) and provider.gateway is None):
        return THIS_MACHINE
    return None


@dataclass(frozen=True)
class Decision:
    """A route under the serving rules: refused (why), or allowed as it is or pinned."""

    refusal: str | None = None
    pin: Pinning | None = None
    facts: Serving | None = None  # the facts that met the rules (a fixed route)


def decide(route: Route, provider: ProviderConfig, rules: Rules) -> Decision:
    """Whether a route meets the serving rules, and the pinning its requests need."""
    if not demands(rules):
        return Decision()
    hosts = hosts_of(provider) or ("",)
    found: Serving | None = None
    for host in hosts:
        facts = facts_of(route, provider, host)
        if facts is None:
            break
        problems = unmet(facts, rules)
        if problems and provider.gateway is not None:
            terms = terms_unmet(facts, rules)
            if not terms:
                break  # the place can still be pinned through the gateway
            problems = terms  # what no pinning of the place can change
        if problems:
            where = f" on {host}" if len(hosts) > 1 else ""
            return Decision(refusal=f"{problems[0]} ({_source(facts)}{where})")
        found = found or facts
    else:
        return Decision(facts=found)
    gateway = provider.gateway
    if gateway is None:
        return Decision(refusal=f"{unmet(Serving(), rules)[0]}: {provider.name} declares no serving facts")
    pinner = PINNERS.get(gateway.hook)
    if pinner is None:
        return Decision(refusal=f"{describe(rules)}: no pinning hook '{gateway.hook}' for {provider.name}")
    if gateway.models and not any(fnmatchcase(route.model, pattern) for pattern in gateway.models):
        listed = ", ".join(gateway.models)
        return Decision(
            refusal=f"{describe(rules)}: {provider.name} pins only {listed} ({gateway.source}), not {route.model}"
        )
    pinned = pinner(route, provider, rules, gateway)
    if isinstance(pinned, str):
        return Decision(refusal=pinned)
    return Decision(pin=pinned)


def _source(facts: Serving) -> str:
    where = {"catalog": "the catalog", "spec": "the spec", "operator": "the operator"}.get(facts.origin, facts.origin)
    return f"as {where} says" + (f", {facts.source}" if facts.source else "")


def verify(pin: Pinning, served: dict[str, Any] | None) -> str | None:
    """Why an answer's report of who served it breaks the pinning, or None when it conforms."""
    served = served or {}
    for key, values in pin.expect:
        got = served.get(key)
        if not got:
            return f"the answer did not report its {key}, so where it was served is unknown ({pin.rule})"
        if values and normal_name(str(got)) not in {normal_name(v) for v in values}:
            return f"served by {key} {str(got)[:80]!r}, outside {pin.rule} (pinned to {', '.join(values)})"
    return None


def _regional(provider: ProviderConfig, gateway: Gateway, rules: Rules) -> tuple[str | None, str | None]:
    """The region an endpoint of the gateway keeps requests in that the rules admit, and the base
    URL to switch to (None when the provider already uses it). Only a serving_regions rule can be
    met by a region: a country rule needs to know the country."""
    if rules.serving_regions is None:
        return None, None
    current = provider.host or ""
    for region, url in gateway.regional:
        if not Serving(regions=frozenset({region})).in_regions(rules.serving_regions):
            continue
        host = url.split("//", 1)[-1].split("/", 1)[0].lower()
        if host == current:
            return region, None
        if current in provider.hosts:  # the catalog's own endpoint: switch to its regional twin
            return region, url
    return None, None


def pin_openrouter(route: Route, provider: ProviderConfig, rules: Rules, gateway: Gateway) -> Pinning | str:
    """OpenRouter's `provider` object: `only`/`order` the upstream providers the catalog places
    where the rules allow, `allow_fallbacks: false`, `data_collection: deny` for trains_on_data
    false, `zdr: true` for a retention rule; its regional endpoint for a region rule. The answer's
    `provider` field must name one of them (any, on a regional endpoint, which fails closed)."""
    region, base_url = _regional(provider, gateway, rules)
    body: dict[str, Any] = {"allow_fallbacks": False}
    expect: tuple[str, ...] = ()
    place = rules.serving_countries is not None or (rules.serving_regions is not None and region is None)
    if place:
        upstreams = [name for name, facts in gateway.upstreams if not unmet(facts, rules, place_only=True)]
        if not upstreams:
            known = ", ".join(f"{name} ({facts.where()})" for name, facts in gateway.upstreams) or "none"
            where = unmet(Serving(), rules, place_only=True)[0].split(":")[0]
            return (
                f"{where}: no upstream provider of {provider.name} that the catalog places serves there "
                f"(known: {known}; {gateway.source}), and no regional endpoint of it does"
            )
        body["only"] = upstreams
        body["order"] = upstreams
        expect = tuple(upstreams)
    if rules.no_training:
        body["data_collection"] = "deny"
    if rules.retention_days is not None:
        body["zdr"] = True
    rule = describe(rules) + (f"; region {region}" if region else "")
    return Pinning(
        hook="openrouter",
        rule=rule,
        body=json.dumps({"provider": body}, sort_keys=True),
        base_url=base_url,
        expect=(("provider", expect),),
    )


def pin_anthropic(route: Route, provider: ProviderConfig, rules: Rules, gateway: Gateway) -> Pinning | str:
    """Anthropic's `inference_geo`: the first geography the catalog places where the rules allow;
    the answer's `usage.inference_geo` must name it."""
    found = []
    for geo, place in gateway.upstreams:
        facts = _with_terms(place, provider.serving)
        problems = unmet(facts, rules)
        if not problems:
            return Pinning(
                hook="anthropic",
                rule=describe(rules),
                body=json.dumps({"inference_geo": geo}),
                expect=(("inference_geo", (geo,)),),
            )
        found.append(f"{geo}: {problems[0]}")
    why = "; ".join(found) or "none known"
    return f"{describe(rules)}: no inference geography of {provider.name} meets it ({why}; {gateway.source})"


def _with_terms(place: Serving, provider: Serving | None) -> Serving:
    """An upstream's facts, completed by its provider's terms (retention, training) it leaves unknown."""
    if provider is None:
        return place
    return replace(
        place,
        retention_days=place.retention_days if place.retention_days is not None else provider.retention_days,
        trains_on_data=place.trains_on_data if place.trains_on_data is not None else provider.trains_on_data,
    )


def pin_regional(route: Route, provider: ProviderConfig, rules: Rules, gateway: Gateway) -> Pinning | str:
    """A vendor with regional endpoints (Mistral's `api.eu.mistral.ai`): the request goes to the
    endpoint of a region the rules admit, which processes it there."""
    terms = terms_unmet(provider.serving or Serving(), rules)
    if terms:
        return f"{terms[0]} ({provider.name}'s regional endpoints keep the place, not these terms)"
    region, base_url = _regional(provider, gateway, rules)
    if region is None or rules.serving_countries is not None:
        regions = ", ".join(f"{name} ({url})" for name, url in gateway.regional)
        first = unmet(Serving(), rules, place_only=True) or unmet(Serving(), rules)
        return (
            f"{first[0].split(':')[0]}: no regional endpoint of {provider.name} meets it ({regions}; {gateway.source})"
        )
    return Pinning(hook="regional", rule=f"{describe(rules)}; region {region}", base_url=base_url)


register_pinner("openrouter", pin_openrouter)
register_pinner("regional", pin_regional)
register_pinner("anthropic", pin_anthropic)


def served_record(
    route: Route, provider: ProviderConfig, host: str | None, served: dict[str, Any] | None
) -> dict[str, Any]:
    """Who served one call and where, for the egress report and result.json: what the answer
    reported (a gateway's upstream, Anthropic's geography), else the route's facts, else its host."""
    served = dict(served or {})
    pin = route.pin
    where_host = (host or provider.host or "").lower()
    facts = facts_of(route, provider, where_host) if where_host or provider.in_process else None
    served_by = served.get("provider") or (facts.provider if facts is not None else None)
    region = "unknown"
    if served.get("inference_geo"):
        region = str(served["inference_geo"])
        upstream = dict(provider.gateway.upstreams).get(region) if provider.gateway is not None else None
        region = upstream.where() if upstream is not None else region
    elif served.get("provider") and provider.gateway is not None:
        known = {normal_name(name): facts for name, facts in provider.gateway.upstreams}
        upstream = known.get(normal_name(str(served["provider"])))
        region = upstream.where() if upstream is not None else region
    elif facts is not None:
        region = facts.where()
    if region == "unknown" and pin is not None and "; region " in pin.rule:
        region = pin.rule.rsplit("; region ", 1)[1]  # a regional endpoint keeps it in its region
    return {
        "served_by": str(served_by or where_host or provider.name)[:120],
        "region": region,
        "host": where_host or None,
        "pinned": pin.as_dict() if pin is not None else None,
        "reported": served,
    }
