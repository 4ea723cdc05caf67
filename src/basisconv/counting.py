"""Parameter and MAC counting for the cost analysis of arXiv 2408.06024 (Sec. on forward/backward cost).

MACs come from ``torch.utils.flop_counter.FlopCounterMode`` (no hand-written counter): it reports FLOPs of
conv/matmul ops as ``2 * MACs``, so ``count_macs = flops / 2``. For a reduced basis layer the expected value is
``H_out*W_out*(rank*C_in*k*k + (C_out-rank)*rank)`` per image; the tests check this against the counter.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _first_param(model: nn.Module) -> torch.Tensor | None:
    return next(iter(model.parameters()), None)


@torch.no_grad()
def count_macs(model: nn.Module, input_size=(1, 3, 32, 32)) -> int:
    """Multiply-accumulates of one forward pass on a zero input of ``input_size``.

    The model runs in eval mode so BatchNorm running statistics are not touched; its mode is restored.
    """
    p = _first_param(model)
    x = torch.zeros(tuple(input_size), device=p.device if p is not None else "cpu",
                    dtype=p.dtype if p is not None and p.is_floating_point() else torch.float32)
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2
