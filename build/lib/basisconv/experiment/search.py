"""The core's sensitivity search fed from the experiment's tensors (arXiv 2408.06024's layer search on CIFAR-10).

``basisconv.core.sensitivity`` takes any training batches and any evaluation; the experiment keeps its data as
uint8 tensors ``(images, labels)``. These two adapters make the sweep's inputs from them, exactly as the pipeline's
stages use them:

- ``train_batches``: a factory of a fresh, seeded ``TensorLoader`` (augmented, shuffled by ``seed``), called once
  per proxy job, so a converted model and its control see the same batches;
- ``correctness``: ``evaluate(model) -> bool (N,)`` on the validation tensors in their order, in the precision the
  proxies ran in.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from basisconv.experiment.loader import TensorLoader
from basisconv.experiment.train import evaluate


def train_batches(train_data: tuple[torch.Tensor, torch.Tensor], batch_size: int, *, seed: int,
                  device="cpu") -> Callable[[], TensorLoader]:
    """``() -> TensorLoader`` over ``train_data`` (training augmentation, shuffled with ``seed``) on ``device``."""
    device = torch.device(device)
    return lambda: TensorLoader(*train_data, batch_size, train=True, seed=seed, device=device)


def correctness(val_data: tuple[torch.Tensor, torch.Tensor], *, device="cpu", amp: bool = False,
                batch_size: int = 1000) -> Callable[[nn.Module], torch.Tensor]:
    """``evaluate(model) -> bool (N,)``: per-image correctness on ``val_data`` (one loader, built once: it copies
    the images to ``device``), under bf16 autocast when ``amp``."""
    loader = TensorLoader(*val_data, batch_size, train=False, device=torch.device(device))
    return lambda model: evaluate(model, loader, amp=amp, per_sample=True)["correct"]
