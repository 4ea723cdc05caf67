"""The pipeline stages of the arXiv 2408.06024 replication, one module each, in DVC order.

Each module ``basisconv.pipeline.stages.<name>`` has one entry ``run(P, progress=...) -> dict``: all of the stage's logic
except figures, from the resolved params ``P`` (``basisconv.pipeline.params.resolve``) to the files declared for it in
``basisconv.pipeline.layout``. The stage's notebook calls ``run`` and draws the figures; ``python -m basisconv.pipeline.launch``
calls the same ``run`` under torchrun. Modules are imported on demand, so importing one stage does not load the
others (each stage's code closure, and so its DVC dependencies, stays its own).
"""
from __future__ import annotations

import importlib

from basisconv.core.checks import check_choice
from basisconv.pipeline.layout import STAGES

NAMES = tuple(STAGES)


def get(name: str):
    """The stage module ``name`` (one of ``NAMES``)."""
    check_choice(name, NAMES, "stage")
    return importlib.import_module(f"{__name__}.{name}")
