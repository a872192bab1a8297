"""Writing a finished run's outputs: the formats asked for, plus `patches/*.diff` and the docs
roles wrote (`docs/ID-ROLE.md`, or `.LANG.md` for a role that writes another language)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.formats import OutputFormat
from orchestrator.outputs.markdown import docs_markdown, render_markdown
from orchestrator.outputs.result import RunResult

if TYPE_CHECKING:
    from orchestrator.outputs.review import Review

# the format `orchestrator report` adds to a run's own: the page a person reads
REPORT: OutputFormat = "html"


@dataclass
class _Source:
    """What a writer reads: the result, the workspace's line counts and the version (for SARIF)."""

    result: RunResult
    line_counts: dict[str, int]
    version: str

    @cached_property
    def review(self) -> Review:
        # built once for both review formats
        from orchestrator.outputs.review import build_review

        return build_review(self.result)


@dataclass(frozen=True)
class Writer:
    """One output format: the file it writes and the text it puts there; `needs_diff` for a review
    of what a diff changed (a run without one is refused before it starts)."""

    file: str
    render: Callable[[_Source], str]
    needs_diff: bool = False


def _json(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _sarif(source: _Source) -> str:
    from orchestrator.outputs.sarif import build_sarif

    return _json(build_sarif(source.result, source.line_counts, source.version))


def _junit(source: _Source) -> str:
    from orchestrator.outputs.junit import build_junit

    return build_junit(source.result)


def _html(source: _Source) -> str:
    from orchestrator.outputs.html import render_html

    return render_html(source.result)


def _github_review(source: _Source) -> str:
    from orchestrator.outputs.review import github_review

    return _json(github_review(source.review))


def _gitlab_review(source: _Source) -> str:
    from orchestrator.outputs.review import gitlab_review

    return _json(gitlab_review(source.review))


# every format of orchestrator.formats, in the order they are written
WRITERS: dict[OutputFormat, Writer] = {
    "sarif": Writer("findings.sarif", _sarif),
    "junit": Writer("junit.xml", _junit),
    "json": Writer("result.json", lambda source: source.result.to_json()),
    "markdown": Writer("report.md", lambda source: render_markdown(source.result)),
    "html": Writer("report.html", _html),
    "github-review": Writer("review.json", _github_review, needs_diff=True),
    "gitlab-review": Writer("gitlab-review.json", _gitlab_review, needs_diff=True),
}
# the review formats and their files (a run that reviewed a diff: outputs.review)
REVIEW_FILES = {name: writer.file for name, writer in WRITERS.items() if writer.needs_diff}


def slug(text: str) -> str:
    """A file name part: letters, digits, `._-`, never `.` or `..` alone, at most 80 characters."""
    found = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.")[:80]
    return found or "file"


def write_outputs(
    result: RunResult,
    out_dir: Path,
    formats: Sequence[str],
    line_counts: dict[str, int] | None = None,
    version: str = "",
) -> list[Path]:
    """Write the formats asked for (the names of `WRITERS`; others are ignored), then patches and docs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    source = _Source(result, line_counts or {}, version)
    written: list[Path] = []
    for name, writer in WRITERS.items():
        if name in formats:
            path = out_dir / writer.file
            path.write_text(writer.render(source), encoding="utf-8")
            written.append(path)
    written += _write_artifacts(result, out_dir)
    return written


def _write_artifacts(result: RunResult, out_dir: Path) -> list[Path]:
    """Patches and docs, under names made of slugs only: an id or a role cannot name a path."""
    written = []
    for sub in result.subtasks:
        for index, patch in enumerate(sub.patches(), 1):
            path = _inside(out_dir, "patches", f"{slug(sub.id)}-{index}-{slug(patch.file)}.diff")
            path.write_text(patch.diff if patch.diff.endswith("\n") else patch.diff + "\n", encoding="utf-8")
            written.append(path)
        role = result.role(sub.role)
        output = sub.output or {}
        if role is not None and role.output == "docs" and output.get("markdown"):
            suffix = f".{slug(role.lang)}.md" if role.lang else ".md"
            path = _inside(out_dir, "docs", f"{slug(sub.id)}-{slug(sub.role)}{suffix}")
            path.write_text(docs_markdown(output, role), encoding="utf-8")
            written.append(path)
    return written


def _inside(out_dir: Path, folder: str, name: str) -> Path:
    path = (out_dir / folder / name).resolve()
    if not path.is_relative_to(out_dir.resolve()):  # slugs cannot climb; a symlinked folder could
        raise ValueError(f"{path} would be outside the output folder {out_dir}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
