"""basisconv: basis convolutions and sensitivity-based layer search.

Replication package for Alekseev, Lukashevich, Zharikov, Vasiliev, *Layer-Specific Optimization: Sensitivity Based
Convolution Layers Basis Search* (arXiv 2408.06024).

Importing the package loads the core library (the layer, surgery, models, data, loader, trainer) and nothing of the
pipeline: ``basisconv.bench``, ``basisconv.stages`` and the other modules load on first use (PEP 562), so each
pipeline stage's code closure, and so what re-runs it, is the core plus what the stage really imports.
"""
from __future__ import annotations

import importlib

from .basis import BasisConv2d
from .counting import count_macs, count_params
from .data import (CIFAR10_MD5, CIFAR10_URL, CLASSES, DataError, fetch_cifar10, load_cifar10, load_data,
                   synthetic_cifar)
from .loader import TensorLoader
from .models import build_model
from .surgery import ConvLayer, conv_layers, convert, convertible_names, fold
from .train import TrainConfig, TrainingDiverged, TrainResult, evaluate, train

__version__ = "0.1.0"
__all__ = [
    "BasisConv2d", "convert", "conv_layers", "build_model", "count_params", "count_macs", "fetch_cifar10",
    "load_cifar10", "load_data", "synthetic_cifar", "TensorLoader", "TrainConfig", "TrainResult", "train",
    "evaluate", "TrainingDiverged", "DataError", "ConvLayer", "convertible_names", "fold", "CIFAR10_URL",
    "CIFAR10_MD5", "CLASSES",
]


def __getattr__(name: str):
    """Submodules on first use: ``basisconv.bench``, ``basisconv.stages``, ``basisconv.report`` ..."""
    try:
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
