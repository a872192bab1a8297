"""The signature of a run's patches and verdicts in its result.json, so that `orchestrator apply`
writes only what a run of this machine verified.

result.json is a plain file anyone can edit: a `"verdict": "unverified"` turned into `"verified"`,
or a verified patch's diff swapped for another, would otherwise be applied as verified. The run
signs, with this user's machine key (the one that signs the result cache, outside every
repository), the run id, the workspace and, for every patch the run kept, its id, file, diff,
model and its final verdict with every check; `apply` recomputes the HMAC and refuses a result
whose signature is missing or does not match.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from orchestrator.outputs import RunResult

DOMAIN = b"orchestrator result.json verdicts v1\n"


def _signed_part(result: RunResult) -> bytes:
    """What the signature covers, as canonical JSON."""
    finals = {v.id: v for s in result.verdicts() for v in s.verification if v.final}
    patches: list[dict[str, Any]] = []
    for sub in result.verdicts():
        for index, patch in enumerate(sub.patches(), 1):
            pid = f"{sub.id}-{index}"
            verdict = finals.get(pid)
            patches.append(
                {
                    "id": pid,
                    "file": patch.file,
                    "diff": patch.diff,
                    "model": sub.model,
                    "verdict": verdict.model_dump(mode="json") if verdict is not None else None,
                }
            )
    core = {"run_id": result.run_id, "workspace": result.workspace, "patches": patches}
    return DOMAIN + json.dumps(core, sort_keys=True, ensure_ascii=False).encode("utf-8")


def signature(result: RunResult, key: bytes) -> str:
    """The HMAC-SHA256 of the result's patches and verdicts under `key`."""
    return hmac.new(key, _signed_part(result), hashlib.sha256).hexdigest()


def authentic(result: RunResult, key: bytes) -> bool:
    """Whether the result carries this key's signature of its patches and verdicts."""
    return result.signature is not None and hmac.compare_digest(result.signature, signature(result, key))
