"""Who served each call and where, as every writer shows it: the egress report's calls (served
by, region, whether the answer was used), and the calls refused for residency (an answer that
reported a provider or geography outside its serving rules, discarded)."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.outputs.result import RunResult, ServedCall


@dataclass(frozen=True)
class Refusal:
    """One answer discarded for the serving rules: the call it belonged to and why."""

    subtask: str
    role: str
    model: str
    served_by: str
    region: str
    reason: str


def refusals(result: RunResult) -> list[Refusal]:
    """Every answer of the run refused for residency (error kind `policy`), call by call."""
    found = []
    for call in result.calls():
        for hop in call.fallbacks:
            if hop.error_kind != "policy":
                continue
            served = hop.served
            found.append(
                Refusal(
                    subtask=call.id,
                    role=call.role,
                    model=hop.model,
                    served_by=served.served_by if served else "unknown",
                    region=served.region if served else "unknown",
                    reason=hop.message,
                )
            )
    return found


def pinning_text(call: ServedCall) -> str:
    """The pinning a request carried, in a few words (`-` when none)."""
    pinned = call.pinned
    if not pinned:
        return "-"
    endpoint = f" at {pinned['base_url']}" if pinned.get("base_url") else ""
    return f"{pinned.get('hook')}: {pinned.get('rule')}{endpoint}"
