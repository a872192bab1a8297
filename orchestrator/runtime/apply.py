"""`orchestrator apply`: the only writer of the workspace. It takes the patches of a finished run
(its result.json), by default every verified one (an unverified one only when forced), and:

- in a git repository, commits them on a new branch (`orchestrator/RUN_ID` by default) built in
  a temporary index from HEAD, so the commit holds the patches and nothing else, then switches to
  it (the files the patches touch must have no uncommitted change);
- elsewhere, applies them to the files in place.

Every patch is checked to apply, all together, before anything is written, and only from a
result whose patches and verdicts carry this machine's signature (`_signature.py`): an edited
result.json, or one made elsewhere, is refused, unless the patches are named and forced (its
verdicts count for nothing).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.checks import git, header_paths, unsafe_path
from orchestrator.errors import SpecError
from orchestrator.outputs import RunResult
from orchestrator.runtime import ledger
from orchestrator.runtime._signature import authentic

IDENTITY = {"GIT_AUTHOR_NAME": "Sovereign Orchestrator", "GIT_AUTHOR_EMAIL": "orchestrator@localhost"}


@dataclass
class Candidate:
    id: str
    file: str
    diff: str
    verdict: str  # verified | unverified | not_applied | rejected | unchecked
    model: str | None


@dataclass
class Applied:
    workspace: Path
    patches: list[str]
    branch: str | None = None  # the new branch, in a git repository
    commit: str | None = None
    notes: list[str] = field(default_factory=list)


def load_result(run: str) -> RunResult:
    """A run's result: a result.json path, or a run id of this machine's ledger."""
    path = Path(run)
    if not path.is_file():
        entry = ledger.get_run(run)
        if entry is None:
            raise SpecError(f"no run {run} on this machine, and no file of that name (give RUN_ID or result.json)")
        out = Path(entry.output_dir) if entry.output_dir else _spec_output_dir(Path(entry.spec_path))
        path = out / "result.json"
        if not path.is_file():
            raise SpecError(f"run {run} left no result.json in {out} (run it with the json format)")
    try:
        return RunResult.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SpecError(f"{path}: not a result.json of this version: {str(exc)[:300]}") from None


def _spec_output_dir(spec_path: Path) -> Path:
    from orchestrator.spec import load_spec

    loaded = load_spec(spec_path)
    return loaded.base_dir / loaded.spec.output.dir


def candidates(result: RunResult) -> list[Candidate]:
    """Every patch the run kept, with its verdict ("unchecked" when the spec had no checks)."""
    verdicts = {v.id: v for s in result.verdicts() for v in s.verification if v.final}
    found = []
    for sub in result.verdicts():
        for index, patch in enumerate(sub.patches(), 1):
            pid = f"{sub.id}-{index}"
            verdict = verdicts.get(pid)
            found.append(Candidate(pid, patch.file, patch.diff, verdict.verdict if verdict else "unchecked", sub.model))
    return found


def choose(result: RunResult, ids: list[str], force: bool) -> list[Candidate]:
    """The patches to apply: those named (all verified ones by default); unverified only forced."""
    every = candidates(result)
    by_id = {c.id: c for c in every}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        known = ", ".join(f"{c.id} ({c.verdict})" for c in every) or "none"
        raise SpecError(f"no patch {', '.join(unknown)} in run {result.run_id} (its patches: {known})")
    chosen = [by_id[i] for i in ids] if ids else [c for c in every if c.verdict == "verified"]
    refused = [c for c in chosen if c.verdict != "verified"]
    if refused and not force:
        listed = ", ".join(f"{c.id} ({c.verdict})" for c in refused)
        raise SpecError(f"not verified: {listed}", hint="apply them anyway with --force")
    if not chosen:
        known = ", ".join(f"{c.id} ({c.verdict})" for c in every) or "none"
        raise SpecError(f"run {result.run_id} has no verified patch to apply (its patches: {known})")
    return chosen


def apply_patches(run: str, ids: list[str] | None = None, branch: str | None = None, force: bool = False) -> Applied:
    """Write a run's patches to its workspace (see the module's docstring)."""
    result = load_result(run)
    notes = []
    if not authentic(result, ledger.machine_key()):
        why = (
            f"the patches and verdicts of run {result.run_id} cannot be authenticated: the result was edited, "
            "or made by another user or machine"
        )
        # forced, the verdicts still count for nothing: only the patches named are applied
        if not (force and ids):
            raise SpecError(why, hint="read the patches, and apply the ones you trust with --patch ID --force")
        notes.append(f"{why}; applied because they were named and forced")
    chosen = choose(result, list(ids or []), force)
    workspace = Path(result.workspace)
    if not workspace.is_dir():
        raise SpecError(f"the run's workspace {workspace} does not exist")
    for candidate in chosen:
        for path in header_paths(candidate.diff):
            reason = unsafe_path(path)
            if reason:
                raise SpecError(f"{candidate.id}: {path}: {reason}")
    combined = "".join(c.diff if c.diff.endswith("\n") else c.diff + "\n" for c in chosen)
    applied = asyncio.run(_apply(result, workspace, chosen, combined, branch))
    applied.notes[:0] = notes
    return applied


async def _apply(result: RunResult, workspace: Path, chosen: list[Candidate], diff: str, branch: str | None) -> Applied:
    top = await _run(["git", "rev-parse", "--show-toplevel"], workspace)
    names = [c.id for c in chosen]
    if top[0] != 0:  # not a repository: in place, once every patch applies
        checked = await git(["apply", "--check", "-"], workspace, diff)
        if checked.code != 0:
            raise SpecError(f"the patches do not apply to {workspace}: {checked.output[:400]}")
        done = await git(["apply", "-"], workspace, diff)
        if done.code != 0:
            raise SpecError(f"git apply failed: {done.output[:400]}")
        return Applied(workspace, names, notes=["not a git repository: the files were changed in place"])
    root = Path(top[1].strip())
    prefix = (await _run(["git", "rev-parse", "--show-prefix"], workspace))[1].strip()
    touched = sorted({prefix + p for c in chosen for p in header_paths(c.diff)})
    dirty = (await _run(["git", "status", "--porcelain", "--", *touched], root))[1].strip()
    if dirty:
        raise SpecError(f"uncommitted changes in files the patches touch:\n{dirty}", hint="commit or stash them first")
    name = branch or f"orchestrator/{result.run_id}"
    exists = await _run(["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{name}"], root)
    if exists[0] == 0:
        raise SpecError(f"branch {name} already exists", hint="choose another with --branch")
    commit = await _commit(root, prefix, diff, _message(result, chosen))
    await _checked(["git", "branch", name, commit], root)
    notes = [f"committed on branch {name}"]
    code, out = await _run(["git", "switch", name], root)
    notes.append(f"switched to {name} (`git switch -` goes back)" if code == 0 else f"could not switch: {out[:300]}")
    return Applied(workspace, names, name, commit, notes)


async def _commit(root: Path, prefix: str, diff: str, message: str) -> str:
    """A commit of HEAD plus the patches, built in a temporary index (the user's is untouched)."""
    with tempfile.TemporaryDirectory(prefix="orchestrator-apply-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        await _checked(["git", "read-tree", "HEAD"], root, env)
        directory = [f"--directory={prefix.rstrip('/')}"] if prefix else []
        await _checked(["git", "apply", "--cached", *directory, "-"], root, env, diff)
        tree = (await _checked(["git", "write-tree"], root, env)).strip()
        env.update(await _identity(root))
        return (await _checked(["git", "commit-tree", tree, "-p", "HEAD", "-m", message], root, env)).strip()


def _message(result: RunResult, chosen: list[Candidate]) -> str:
    lines = [f"Apply {len(chosen)} patch(es) of orchestrator run {result.run_id}", ""]
    verdicts = {v.id: v for s in result.verdicts() for v in s.verification if v.final}
    for c in chosen:
        verdict = verdicts.get(c.id)
        checks = ", ".join(f"{o.name} {o.before} -> {o.after}" for o in verdict.checks) if verdict else ""
        lines.append(f"- {c.id} {c.file}: {c.verdict}{f' ({checks})' if checks else ''}, by {c.model}")
    return "\n".join(lines)


async def _identity(root: Path) -> dict[str, str]:
    """The repository's own committer identity, else the orchestrator's."""
    email = (await _run(["git", "config", "user.email"], root))[1].strip()
    if email:
        return {}
    name, mail = IDENTITY["GIT_AUTHOR_NAME"], IDENTITY["GIT_AUTHOR_EMAIL"]
    return {**IDENTITY, "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": mail}


async def _checked(argv: list[str], cwd: Path, env: dict[str, str] | None = None, stdin: str = "") -> str:
    code, out = await _run(argv, cwd, env, stdin)
    if code != 0:
        raise SpecError(f"{' '.join(argv[:3])} failed: {out[:400]}")
    return out


async def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None, stdin: str = "") -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env={**os.environ, "LC_ALL": "C", **(env or {})},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate(stdin.encode("utf-8"))
    return process.returncode or 0, out.decode("utf-8", "replace")
