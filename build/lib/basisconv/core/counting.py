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


def basis_params_saved(c_in: int, c_out: int, k: int, rank: int, coeff: str = "reduced") -> int:
    """Dense minus basis weights of one layer: ``C_out C_in k^2 - (r C_in k^2 + (C_out - r) r)`` (reduced;
    ``full`` mixes all ``C_out`` outputs). The one home of this count: sweep rows, matched subsets, the spectral
    baseline and the peers' budgets all call it."""
    mixed = c_out - rank if coeff == "reduced" else c_out
    return c_out * c_in * k * k - (rank * c_in * k * k + mixed * rank)


def _first_param(model: nn.Module) -> torch.Tensor | None:
    return next(iter(model.parameters()), None)


def example_tensor(model: nn.Module, example_input) -> torch.Tensor:
    """``example_input`` as a tensor on the model's device and dtype: a tensor as given, or zeros of a shape
    (a tuple such as ``(1, 3, 224, 224)``). There is no default: the caller's data decides the input size."""
    p = _first_param(model)
    device = p.device if p is not None else torch.device("cpu")
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
    if isinstance(example_input, torch.Tensor):
        return example_input.to(device=device, dtype=dtype)
    if isinstance(example_input, (tuple, list, torch.Size)) and example_input \
            and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in example_input):
        return torch.zeros(tuple(example_input), device=device, dtype=dtype)
    raise ValueError(f"example_input must be a tensor or a shape of positive ints such as (1, 3, 32, 32), "
                     f"got {example_input!r}")


@torch.no_grad()
def count_macs(model: nn.Module, example_input) -> int:
    """Multiply-accumulates of one forward pass on ``example_input`` (a tensor, or a shape: zeros of it).

    The model runs in eval mode so BatchNorm running statistics are not touched; its mode is restored.
    """
    x = example_tensor(model, example_input)
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2
