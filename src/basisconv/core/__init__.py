"""The core of basisconv (arXiv 2408.06024) on any model: needs torch and numpy only.

``basis`` (the layer), ``conv_guard`` (oneDNN #6035), ``surgery`` (conv records, convert, fold), ``counting``
(parameters, MACs, a layer's saving), ``sensitivity`` (candidates, proxies, the per-layer sweep), ``selection``
(the budgeted knapsack, matched subsets), ``switch`` (conversion mid-training), ``spectral`` (a data-free
baseline), ``evidence`` (statistics). Imports nothing above it; the package's public names come from here.
"""
from __future__ import annotations

import importlib

# public name -> the core module that defines it (``basisconv.<name>`` is the same object)
API = {
    "BasisConv2d": "basis", "resolve_rank": "basis",
    "ConvLayer": "surgery", "conv_layers": "surgery", "convertible_names": "surgery", "convert": "surgery",
    "fold": "surgery",
    "count_macs": "counting", "count_params": "counting", "basis_params_saved": "counting",
    "ProxyConfig": "sensitivity", "PROXIES": "sensitivity", "SensitivityRow": "sensitivity",
    "candidate_layers": "sensitivity", "layer_sensitivity": "sensitivity",
    "select_layers": "selection", "matched_subset": "selection", "Selection": "selection",
    "switch": "switch", "guard_convs": "conv_guard", "paired_interval": "evidence",
}
__all__ = sorted(API)


def __getattr__(name: str):
    """A public name, from its module on first use (PEP 562): importing ``basisconv.core`` loads nothing."""
    if name in API:
        return getattr(importlib.import_module(f"{__name__}.{API[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}; public names: {', '.join(__all__)}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
