"""The sovereignty boundary, readable end to end in this folder: which model may see which data
(`_rules`), where API keys may go (`trust`), which values are never written or sent (`secrets`),
and what left the machine (`egress`)."""

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
