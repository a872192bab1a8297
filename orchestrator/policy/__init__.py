"""The sovereignty boundary, readable end to end in this folder. A run's preparation asks one
`RunPolicy` (`run`) everything that decides what the run may do, for whom and where:

- `confine`: what a spec points at stays inside its repository;
- `floor`: the operator's floor and ceilings, pull-request mode, the effective rules and sources;
- `commands`: the operator's command patterns (checks, MCP servers);
- `chains`: the chain table, each role's and node's models under the rules of each data class;
- `_rules`: which model may see which data; `serving`: where a model is served;
- `trust`: where API keys may go; `mcp`: what MCP servers may reach and start;
- `tracing`: whether `--trace` may send prompts out; `evaluation`: an eval file's trust;
- `secrets`: which values are never written or sent; `egress`: what left the machine.
"""

from orchestrator.policy._rules import (
    CLASSES,
    Rules,
    allowed_by,
    file_class,
    host_refusal,
    host_rule,
    refusal,
    rules_for,
    tighter,
)
from orchestrator.policy.egress import Egress
from orchestrator.policy.secrets import MASK, redact, redact_tree, secret_values
from orchestrator.policy.trust import TRUSTED_HOSTS_ENV, catalog_hosts, introduced_host, untrusted

__all__ = [
    "CLASSES",
    "MASK",
    "TRUSTED_HOSTS_ENV",
    "Egress",
    "Rules",
    "allowed_by",
    "catalog_hosts",
    "file_class",
    "host_refusal",
    "host_rule",
    "introduced_host",
    "redact",
    "redact_tree",
    "refusal",
    "rules_for",
    "secret_values",
    "tighter",
    "untrusted",
]
