"""The reproduction of oneDNN issue #6035 (see ``basisconv.core.conv_guard``), run in a subprocess by
tests/test_conv_guard.py because the bug can hang a thread inside a C kernel, where no Python timeout reaches.

``python tests/onednn_6035_repro.py guarded``: ``nn.Conv2d(4, 8, 1, stride=2)`` on a ``(100, 4, 32, 32)``
channels_last input through the package's path (``guard_convs``), and the same conv as a ``BasisConv2d``; their
weight gradients checked against a float64 reference. ``raw``: the plain conv, no guard, which on an affected
machine hangs, crashes or prints a wrong gradient (exit 1). Prints one line per case.
"""
import copy
import sys

import torch
import torch.nn as nn

from basisconv import BasisConv2d
from basisconv.core.conv_guard import guard_convs

TOL = 1e-4  # relative to the largest reference entry; fp32 sums over 100 * 16 * 16 pixels stay near 1e-6


def weight_grad_error(module: nn.Module, x: torch.Tensor) -> float:
    """Largest |dW - dW_ref| / max |dW_ref| of ``sum(module(x))`` against the same module in float64 (NCHW)."""
    module.zero_grad(set_to_none=True)
    module(x).sum().backward()
    ref = copy.deepcopy(module).double().to(memory_format=torch.contiguous_format)
    ref.zero_grad(set_to_none=True)
    ref(x.detach().double().contiguous()).sum().backward()
    g, g_ref = module.weight.grad.double(), ref.weight.grad
    return ((g - g_ref).abs().max() / g_ref.abs().max()).item()


def main(mode: str) -> int:
    if mode not in ("guarded", "raw"):
        raise SystemExit(f"mode must be one of guarded, raw; got {mode!r}")
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 8, 1, stride=2, bias=False).to(memory_format=torch.channels_last)
    x = torch.randn(100, 4, 32, 32).contiguous(memory_format=torch.channels_last)
    cases = {"conv": conv}
    if mode == "guarded":
        assert guard_convs(conv) == [""], "the guard must take the reproduction's conv"
        cases["basis"] = BasisConv2d.from_conv(conv, rank=4).to(memory_format=torch.channels_last)
    bad = 0
    for name, m in cases.items():
        err = weight_grad_error(m, x)
        ok = err < TOL
        bad += not ok
        print(f"{mode} {name}: weight-gradient error {err:.3g} (tolerance {TOL}) {'ok' if ok else 'WRONG'}",
              flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "guarded"))
