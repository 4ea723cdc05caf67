"""Stage ``report``: every table and figure of the run, and one sentence per claim of arXiv 2408.06024.

Renders the work tree's results (``basisconv.pipeline.render.page``, the same code that renders a published run
again from its kept copy): tables to ``reports/tables/`` (CSV, Markdown, LaTeX), figures drawn from the results to
``reports/figures/``, and ``reports/README.md``, which states what the paper claims and what this run measured. Every
number comes from the result files.
"""
from __future__ import annotations

from pathlib import Path

from basisconv.pipeline import render
from basisconv.pipeline.layout import STAGES

L = STAGES["report"]


def run(P: dict, progress=True) -> dict:
    """Write tables, figures and ``reports/README.md``. Returns ``render.page``'s dict."""
    return render.page(".", Path(L["readme"]).parent, P["report"]["title"])
