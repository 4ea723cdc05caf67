"""basisconv: basis convolutions and sensitivity-based layer search.

Replication package for Alekseev, Lukashevich, Zharikov, Vasiliev, *Layer-Specific Optimization: Sensitivity Based
Convolution Layers Basis Search* (arXiv 2408.06024).
"""
from .basis import BasisConv2d
from .counting import count_macs, count_params
from .data import (CIFAR10_MD5, CIFAR10_URL, CLASSES, DataError, fetch_cifar10, load_cifar10, load_data,
                   synthetic_cifar)
from .loader import TensorLoader
from .models import build_model
from .surgery import ConvLayer, conv_layers, convert, convertible_names, fold
from .train import TrainConfig, TrainingDiverged, TrainResult, evaluate, train

from . import bench, data, distributed, faithfulness, io, publish, report, runs, sensitivity  # noqa: E402  (used by notebooks)

__version__ = "0.1.0"
__all__ = [
    "BasisConv2d", "convert", "conv_layers", "build_model", "count_params", "count_macs", "fetch_cifar10",
    "load_cifar10", "load_data", "synthetic_cifar", "TensorLoader", "TrainConfig", "TrainResult", "train",
    "evaluate", "TrainingDiverged", "DataError", "ConvLayer", "convertible_names", "fold", "CIFAR10_URL",
    "CIFAR10_MD5", "CLASSES",
]
