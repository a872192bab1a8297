"""Which diff a run reviews: the spec's `diff_base` (or `--diff-base`, an override of it), else the
base branch a CI pull-request job names in its own variables; `none` reviews the whole include set.
An explicit revision that cannot be found is an error (exit 2); the CI's, a warning."""

from __future__ import annotations

import os
from collections.abc import Mapping

from orchestrator.diff import DiffScope, ci_base, diff_scope, resolve
from orchestrator.spec import LoadedSpec
from orchestrator.spec._document import OVERRIDE
from orchestrator.workspace import ALWAYS_EXCLUDED, FileSet, glob_match

OFF = "none"


def review_scope(
    loaded: LoadedSpec, files: FileSet, warnings: list[str], env: Mapping[str, str] | None = None
) -> DiffScope | None:
    """The diff scope of the run, or None when it reviews every included file."""
    env = os.environ if env is None else env
    spec = loaded.spec
    chosen = _chosen(loaded, env, warnings)
    if chosen is None:
        return None
    base, source = chosen
    readable = {f.path for f in files.files}
    skipped = dict(files.skipped)

    def unreadable(path: str) -> str | None:
        if path in readable:
            return None
        if path in skipped:
            return skipped[path]
        excluded = [*ALWAYS_EXCLUDED, *spec.exclude]
        if not any(glob_match(path, p) for p in spec.include) or any(glob_match(path, p) for p in excluded):
            return "outside include/exclude"
        return "not a file of the workspace"

    scope = diff_scope(
        loaded.workspace, base, max_bytes=spec.limits.max_diff_bytes, unreadable=unreadable, source=source
    )
    warnings += scope.warnings
    if scope.report.truncated:
        warnings.append(
            f"the diff is larger than limits.max_diff_bytes ({spec.limits.max_diff_bytes} bytes): "
            "the files past it are listed as not reviewed"
        )
    if not scope.paths:
        warnings.append(f"no reviewable file changed between {base} and HEAD")
    return scope


def _chosen(loaded: LoadedSpec, env: Mapping[str, str], warnings: list[str]) -> tuple[str, str] | None:
    """(revision, where it came from), or None."""
    spec = loaded.spec
    if spec.diff_base is not None:
        if spec.diff_base == OFF:
            return None
        origin = loaded.document.origin_of(("diff_base",))
        line = loaded.document.line_of(("diff_base",))
        where = "--diff-base / --set" if origin == OVERRIDE else f"{loaded.path}" + (f":{line}" if line else "")
        return spec.diff_base, where
    found = ci_base(env)
    if found is None:
        return None
    revisions, variable = found
    for revision in revisions:
        if resolve(loaded.workspace, revision) is not None:
            return revision, variable
    warnings.append(
        f"{variable} names {revisions[-1]}, which this clone does not have (a shallow clone?): reviewing every "
        "included file; fetch the base branch (fetch-depth: 0) to review only what changed"
    )
    return None
