"""report.html: the run for people, in one self-contained file (no network at all): the graph
that ran, a timeline, findings, patches, docs, models, egress and usage. A pure renderer of the
typed result, like every output."""

from orchestrator.outputs.html._page import render_html

__all__ = ["render_html"]
