"""basisconv: basis convolutions and sensitivity-based layer search.

Replication package for Alekseev, Lukashevich, Zharikov, Vasiliev, *Layer-Specific Optimization: Sensitivity Based
Convolution Layers Basis Search* (arXiv 2408.06024). Four layers, each importing only the ones below it
(tests/test_layering.py checks it):

- ``basisconv.core``: the method on any model (torch and numpy only): the basis layer, model surgery, costs, the
  sensitivity search, the selection, the switch, statistics. Its public names are this package's names.
- ``basisconv.experiment``: the paper's CIFAR-10 experiment: data, loader, models, trainer, precision, torchrun.
- ``basisconv.perf``: performance measurement: timing, execution forms, peers, ONNX export.
- ``basisconv.pipeline``: the reproducible pipeline: params, validation, layout, keys, runs, stages, report.

Importing ``basisconv`` loads nothing; a public name loads its core module on first use (PEP 562), so what a
pipeline stage imports, and so what re-runs it under DVC, is only what it really uses.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

from basisconv.core import API as _API  # the core's public names are the package's

__all__ = sorted(_API)


def __getattr__(name: str):
    """A public name from ``basisconv.core``, or a layer subpackage, on first use."""
    if name in _API:
        return getattr(importlib.import_module(f"basisconv.core.{_API[name]}"), name)
    if name in ("core", "experiment", "perf", "pipeline"):
        return importlib.import_module(f"basisconv.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}; public names: {', '.join(__all__)}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
