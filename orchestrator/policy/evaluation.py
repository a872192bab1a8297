"""What the operator's trust allows of an eval file, decided before anything is cloned or run. An
eval file may come from a pull request as a spec may: then (or with `--untrusted`) its spec and its
instances' repositories stay inside the eval file's repository (or the operator policy's
`workspaces`), and an instance's `setup` is a command like a check's: it runs only when the
operator's `allow_checks` admits it (whenever `allow_checks` is listed, in any mode)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.errors import PolicyError
from orchestrator.policy.commands import command_pattern
from orchestrator.policy.confine import repository_root
from orchestrator.spec.evalfile import LoadedEval
from orchestrator.spec.operator import Operator


def refuse_untrusted(loaded: LoadedEval, operator: Operator) -> None:
    """PolicyError (exit 5) naming every refusal; nothing was read of any repository."""
    found = []
    pr = operator.pull_request_mode
    if operator.untrusted:
        root = repository_root(loaded.path)
        roots = [root, *(Path(p).expanduser().resolve() for p in operator.policy.workspaces)]
        places = [("spec", loaded.spec_path), *((f"{i.id}.workspace", i.repo) for i in loaded.instances)]
        for field, path in places:
            if not any(path.resolve().is_relative_to(r) for r in roots):
                found.append(f"{loaded.path}: {field}: {pr}: {path} is outside the eval's repository {root}")
    allowed = operator.policy.allow_checks
    for instance in loaded.instances:
        if not instance.setup or (allowed is None and not operator.untrusted):
            continue
        where = f"{instance.source}: {instance.id}.setup"
        if allowed is None:
            found.append(f"{where}: {pr} runs an instance's setup only when the operator's allow_checks admits it")
        elif not any(command_pattern(p).match(instance.setup) for p in allowed):
            found.append(f"{where}: the command {instance.setup!r} is not admitted by allow_checks")
    if found:
        raise PolicyError("\n".join(found))
