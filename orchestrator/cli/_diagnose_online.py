"""`orchestrator doctor --online`: whether the configured hosts answer (the catalog's providers
that need no key or whose key is set, as `orchestrator models --check` asks them: each lists
its models), and for Ollama, which of the catalog's tags are pulled. Lists models only; calls none."""

from __future__ import annotations

from orchestrator.cli._diagnose import Finding

SHOWN = 8  # tags named in a summary (all of them are in the details)


def host_findings(timeout_s: float) -> list[Finding]:
    from orchestrator.models.probe import default_providers_to_check, probe_providers
    from orchestrator.workflow import default_providers

    configured = default_providers_to_check(default_providers())
    remote = {name: config for name, config in configured.items() if not config.in_process}
    findings = []
    for name, status in sorted(probe_providers(remote, timeout_s).items()):
        details = {"endpoint": status.endpoint, "ok": status.ok, "detail": status.detail}
        if not status.ok:
            fix = (
                "start it: `ollama serve` (or point providers.ollama.base_url at your Ollama host)"
                if status.kind == "ollama"
                else "check the network and the provider's key"
            )
            summary = f"{status.endpoint} does not answer: {status.detail}"
            findings.append(Finding(f"host {name}", "warn", summary, fix, details))
            continue
        findings.append(Finding(f"host {name}", "ok", f"{status.endpoint} answers ({status.detail})", "", details))
        if status.kind == "ollama":
            findings.append(ollama_tags(name, status.models))
    return findings


def ollama_tags(provider: str, served: list[str]) -> Finding:
    """The catalog's Ollama tags (what `ollama/TAG` routes name) against what the host has pulled."""
    from orchestrator.catalog import load_catalog

    have = {_tag(model) for model in served}
    tags: dict[str, str] = {}
    for entry in load_catalog().models:
        for route in entry.routes:
            if route.provider == "ollama":
                tags.setdefault(route.model, entry.id)
    pulled = [tag for tag in tags if _tag(tag) in have]
    missing = [tag for tag in tags if _tag(tag) not in have]
    named = ", ".join(f"{tag} ({tags[tag]})" for tag in pulled[:SHOWN]) or "none"
    summary = f"{len(pulled)} of the catalog's {len(tags)} Ollama tags pulled: {named}"
    fix = ""
    if missing:
        shown = " ; ".join(f"ollama pull {tag}" for tag in missing[:3])
        fix = f"pull the models your specs name, e.g. {shown} ({len(missing)} catalog tags not pulled)"
    details = {"pulled": pulled, "not_pulled": missing, "served": sorted(served)}
    return Finding(f"{provider} models", "ok" if pulled else "info", summary, fix, details)


def _tag(name: str) -> str:
    return name.removesuffix(":latest")
