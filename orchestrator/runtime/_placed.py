"""Where a diff-scoped run's findings and patches fall: each finding on a line of the diff or not
(`in_diff`), each patch of a final answer placed in the files at HEAD (the lines it replaces and
their replacement) and whether those lines are the diff's. Written into result.json's `diff`, so
that a review (outputs.review) is rebuilt from the result alone."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.diff import DiffReport, FindingPlace, PatchPlace, Unplaceable, place_patch
from orchestrator.engine.state import CallRecord
from orchestrator.workflow import Workflow
from orchestrator.workspace import SourceFile


def diff_report(
    workflow: Workflow, subtasks: Sequence[CallRecord], files: Sequence[SourceFile] | None
) -> DiffReport | None:
    """The run's diff report with its findings and patches placed (None: the run reviewed no diff)."""
    if workflow.diff is None:
        return None
    report = workflow.diff.report.model_copy(deep=True)
    texts = {f.path: f.text for f in (files if files is not None else workflow.files.files)}
    kept = [s for s in subtasks if not s.proposal_of and s.ok]
    for sub in kept:
        for index, finding in enumerate(sub.findings()):
            in_diff = report.in_diff(finding.file, finding.line)
            place = FindingPlace(subtask=sub.id, index=index, file=finding.file, line=finding.line, in_diff=in_diff)
            report.findings.append(place)
        for number, patch in enumerate(sub.patches(), 1):
            report.patches.append(_placed(report, f"{sub.id}-{number}", sub.id, patch.diff, texts))
    return report


def _placed(report: DiffReport, patch_id: str, subtask: str, diff: str, texts: dict[str, str]) -> PatchPlace:
    try:
        spans = place_patch(diff, texts)
    except Unplaceable as exc:
        return PatchPlace(patch=patch_id, subtask=subtask, in_diff=False, reason=str(exc))
    outside = [s for s in spans if not report.span_in_diff(s)]
    if not spans:
        return PatchPlace(patch=patch_id, subtask=subtask, in_diff=False, reason="the patch changes no line")
    if outside:
        where = ", ".join(f"{s.path}:{s.start_line}-{s.line}" for s in outside[:3])
        reason = f"it changes lines the diff does not show ({where})"
        return PatchPlace(patch=patch_id, subtask=subtask, spans=spans, in_diff=False, reason=reason)
    return PatchPlace(patch=patch_id, subtask=subtask, spans=spans, in_diff=True)
