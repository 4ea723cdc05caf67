"""Peers of the basis layer at the same parameter budget (arXiv 2408.06024, forward/backward cost, against the
factorized convolutions of other tools).

The paper's layer keeps ``r`` of the ``C_out`` filters and combines them with a reduced coefficient matrix:
``r C_in k^2 + (C_out - r) r`` weights. Two published alternatives spend the same budget differently:

- ``full_coeff``: a ``k x k`` conv to ``r_f`` channels, then a ``1 x 1`` conv to ``C_out`` (the form of MosaicML
  Composer's Factorize and of low-rank SVD compression): ``r_f (C_in k^2 + C_out)`` weights, so at equal budget
  ``r_f = budget / (C_in k^2 + C_out)``, a little below ``r``. Initialised from the conv's own truncated SVD.
- ``tucker``: tensorly-torch's ``FactorizedConv`` with a Tucker-factorized weight, run in its ``factorized``
  implementation (1x1 in-projection, small ``k x k`` core conv, 1x1 out-projection), at ``rank = budget / dense``
  (tensorly-torch reads a float rank as that share of the dense parameters).

``PEERS`` is the registry (name -> ``builder(conv, budget) -> module``); a new peer is one entry plus its test
(tests/test_peers.py parametrises over it). ``bench_peers`` times them next to the dense conv and the basis layer
on every distinct 3x3 shape of a model, forward and forward+backward, in fp32 and (where the device has it) bf16
autocast, with the MACs actually executed (``count_macs``) so each form's share of its own theoretical speedup is
comparable.
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
import torch.nn as nn

from basisconv.core.basis import BasisConv2d, resolve_rank
from basisconv.core.progress import bar as progress_bar
from basisconv.perf.bench import PASSES, pass_fn, check_memory_format, distinct_shapes, time_call
from basisconv.core.checks import check_choice
from basisconv.core.counting import count_macs, count_params
from basisconv.experiment.precision import PRECISIONS, bf16_supported
from basisconv.experiment.provenance import hardware_info
from basisconv.core.counting import basis_params_saved


def basis_budget(conv: nn.Conv2d, ratio: float, coeff: str = "reduced") -> int:
    """Weights of the basis layer that replaces ``conv`` at ``ratio`` (the budget every peer gets)."""
    c_out, c_in, k, _ = conv.weight.shape  # square kernels, as everywhere in the sweep
    return conv.weight.numel() - basis_params_saved(c_in, c_out, k, resolve_rank(c_out, ratio=ratio), coeff)


def full_coeff_conv(conv: nn.Conv2d, budget: int) -> nn.Module:
    """``k x k`` conv to ``r_f`` channels, then ``1 x 1`` to ``C_out``; ``W ~ U_r (S_r V_r^T)`` from the SVD."""
    c_out, c_in, kh, kw = conv.weight.shape
    r = max(1, min(c_out, c_in * kh * kw, round(budget / (c_in * kh * kw + c_out))))
    first = nn.Conv2d(c_in, r, (kh, kw), stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
                      bias=False)
    second = nn.Conv2d(r, c_out, 1, bias=conv.bias is not None)
    with torch.no_grad():
        u, s, vh = torch.linalg.svd(conv.weight.detach().reshape(c_out, -1), full_matrices=False)
        first.weight.copy_((s[:r, None] * vh[:r]).reshape(r, c_in, kh, kw))  # (r, C_in, k, k)
        second.weight.copy_(u[:, :r, None, None])  # (C_out, r, 1, 1)
        if conv.bias is not None:
            second.bias.copy_(conv.bias)
    return nn.Sequential(first, second).to(conv.weight.device)


def tucker_conv(conv: nn.Conv2d, budget: int) -> nn.Module:
    """tensorly-torch's Tucker ``FactorizedConv`` (factorized implementation) at ``budget / dense`` of the weights."""
    try:
        from tltorch import FactorizedConv
    except ImportError as e:  # a declared dependency; say which package provides it
        raise ImportError("the 'tucker' peer needs tensorly-torch: pip install tensorly-torch") from e
    def build(share, decompose):
        return FactorizedConv.from_conv(conv, rank=share, factorization="tucker", implementation="factorized",
                                        decompose_weights=decompose)
    # tensorly-torch rounds the Tucker ranks from the share, overshooting small layers: lower it until it fits
    share = budget / conv.weight.numel()
    while share > 1e-3 and count_params(build(share, False)) > budget:
        share *= 0.97
    return build(share, True).to(conv.weight.device)


# name -> builder(conv, parameter budget) -> a module with the conv's input/output shapes
PEERS: dict[str, Callable[[nn.Conv2d, int], nn.Module]] = {
    "full_coeff": full_coeff_conv,
    "tucker": tucker_conv,
}


def bench_peers(model: nn.Module, ratios, *, input_shape, batch_size: int = 128, memory_format: str = "channels_last",
                device="cpu", min_run_time: float = 1.0, precisions=("fp32", "bf16"), passes=PASSES,
                peers=None, progress: bool | dict = True) -> list[dict]:
    """Rows per distinct shape x ratio x form (``dense``, ``basis``, each of ``peers``, default every ``PEERS``
    entry) x precision x pass.

    ``bf16`` rows only where the device has native bf16 (``precision.bf16_supported``). ``share_of_theory`` is the
    measured speedup over the dense conv divided by the form's own MAC ratio.
    """
    peers = list(PEERS) if peers is None else list(peers)
    for name in peers:
        check_choice(name, tuple(PEERS), "peer")
    for prec in precisions:
        check_choice(prec, PRECISIONS, "precision")
    device = torch.device(device)
    fmt = check_memory_format(memory_format)
    model = copy.deepcopy(model).to(device).eval()
    precs = [p for p in precisions if p == "fp32" or (p == "bf16" and bf16_supported(device))]
    hw = hardware_info(device)
    jobs = [(rec, q) for rec in distinct_shapes(model, input_shape) for q in ratios]
    rows = []
    for rec, q in progress_bar(jobs, progress=progress, desc="peers"):
        conv = model.get_submodule(rec.name)
        budget = basis_budget(conv, q)
        forms = {"dense": conv, "basis": BasisConv2d.from_conv(conv, ratio=q, init="qr")}
        forms.update({name: PEERS[name](conv, budget) for name in peers})
        shape = (1, rec.in_channels, *rec.input_hw)
        x = torch.randn(batch_size, *shape[1:], device=device).contiguous(memory_format=fmt)
        macs = {name: count_macs(m, shape) for name, m in forms.items()}
        for prec in precs:
            dense_ms = {}
            for name, mod in forms.items():
                mod = mod.to(memory_format=fmt)
                for p in passes:
                    med, iqr = time_call(pass_fn(mod, x, p, prec), min_run_time=min_run_time)
                    if name == "dense":  # first in ``forms``: every other form divides by it
                        dense_ms[p] = med
                    theory = macs["dense"] / macs[name]
                    rows.append({"layer": rec.name, "in_channels": rec.in_channels, "out_channels": rec.out_channels,
                                 "stride": rec.stride[0], "input_hw": rec.input_hw[0], "ratio": q, "form": name,
                                 "precision": prec, "pass": p, "batch_size": batch_size, "budget": budget,
                                 "params": count_params(mod), "macs": macs[name], "median_ms": med, "iqr_ms": iqr,
                                 "theoretical_speedup": theory, "measured_speedup": dense_ms[p] / med,
                                 "share_of_theory": dense_ms[p] / med / theory, "memory_format": memory_format,
                                 "device_name": hw["device_name"], "threads": hw["threads"], "torch": hw["torch"]})
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """Per form, precision and pass: median share of theory and median measured speedup over shapes and ratios,
    and on how many of them the form beat the dense conv."""
    import pandas as pd
    df = pd.DataFrame(rows)
    df = df[df.form != "dense"]
    g = df.groupby(["form", "precision", "pass"], sort=False)
    out = pd.DataFrame({"median_share_of_theory": g.share_of_theory.median(),
                        "median_measured_speedup": g.measured_speedup.median(),
                        "faster_than_dense": g.measured_speedup.apply(lambda s: int((s > 1).sum())),
                        "shapes_x_ratios": g.size(), "median_params_over_budget": (g.params.median()
                                                                                  / g.budget.median())})
    return out.reset_index().to_dict("records")
