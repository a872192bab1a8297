"""Writing a finished run's outputs: the formats asked for, plus `patches/*.diff` and the docs
roles wrote (`docs/ID-ROLE.md`, or `.LANG.md` for a role that writes another language)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from orchestrator.outputs.markdown import docs_markdown, render_markdown
from orchestrator.outputs.result import RunResult

FORMATS = ("markdown", "html", "json", "sarif", "junit", "github-review", "gitlab-review")
# the review formats and their files (a run that reviewed a diff: outputs.review)
REVIEW_FILES = {"github-review": "review.json", "gitlab-review": "gitlab-review.json"}


def slug(text: str) -> str:
    """A file name part: letters, digits, `._-`, never `.` or `..` alone, at most 80 characters."""
    found = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.")[:80]
    return found or "file"


def write_outputs(
    result: RunResult, out_dir: Path, formats: list[str], line_counts: dict[str, int] | None = None, version: str = ""
) -> list[Path]:
    """Write the formats asked for (markdown, html, json, sarif, junit), plus patches and docs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if "sarif" in formats:
        from orchestrator.outputs.sarif import build_sarif

        path = out_dir / "findings.sarif"
        sarif = build_sarif(result, line_counts or {}, version)
        path.write_text(json.dumps(sarif, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    if "junit" in formats:
        from orchestrator.outputs.junit import build_junit

        path = out_dir / "junit.xml"
        path.write_text(build_junit(result), encoding="utf-8")
        written.append(path)
    if "json" in formats:
        path = out_dir / "result.json"
        path.write_text(result.to_json(), encoding="utf-8")
        written.append(path)
    if "markdown" in formats:
        path = out_dir / "report.md"
        path.write_text(render_markdown(result), encoding="utf-8")
        written.append(path)
    if "html" in formats:
        from orchestrator.outputs.html import render_html

        path = out_dir / "report.html"
        path.write_text(render_html(result), encoding="utf-8")
        written.append(path)
    written += _write_reviews(result, out_dir, formats)
    written += _write_artifacts(result, out_dir)
    return written


def _write_reviews(result: RunResult, out_dir: Path, formats: list[str]) -> list[Path]:
    """review.json (GitHub) and gitlab-review.json, for a run that reviewed a diff."""
    wanted = [f for f in REVIEW_FILES if f in formats]
    if not wanted:
        return []
    from orchestrator.outputs.review import build_review, github_review, gitlab_review

    review = build_review(result)
    written = []
    for kind in wanted:
        data = github_review(review) if kind == "github-review" else gitlab_review(review)
        path = out_dir / REVIEW_FILES[kind]
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
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
