"""Model surgery: list a model's convolutions and replace chosen ones by basis convolutions (arXiv 2408.06024).

``convert`` is how the paper's experiments apply basis layers, either to every layer (the naive use) or to the
subset picked by the sensitivity search. It works on a deep copy, finds modules by dotted name, builds each
replacement with ``BasisConv2d.from_conv`` (so weights are initialised from the trained filters) and returns the
new model; layers that are not named keep their weights bit for bit.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn as nn

from basisconv.core.checks import check_choice
from basisconv.core.basis import BasisConv2d, check_ratio, COEFF_CHOICES, INIT_CHOICES
from basisconv.core.conv_guard import GuardedConv2d
from basisconv.core.selection import Selection
from basisconv.core.counting import count_macs, count_params, example_tensor


@dataclass(frozen=True)
class ConvLayer:
    """One convolution of a model: dotted name, shape, cost per forward of one ``input_size`` batch."""
    name: str
    kind: str  # "conv" or "basis"
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    input_hw: tuple[int, int]
    output_hw: tuple[int, int]
    params: int
    macs: int
    rank: int | None = None


def convertible_names(model: nn.Module) -> list[str]:
    """Dotted names of the ``nn.Conv2d`` modules that ``convert`` accepts (``groups == 1``), in model order.

    Plain convs only (and their oneDNN-guarded twin, ``conv_guard.GuardedConv2d``): a subclass such as a
    weight-standardised conv computes something else than its ``weight``, so its filters are no basis to fit."""
    return [n for n, m in model.named_modules() if type(m) in (nn.Conv2d, GuardedConv2d) and m.groups == 1]


@torch.no_grad()
def conv_layers(model: nn.Module, example_input) -> list[ConvLayer]:
    """A record per ``nn.Conv2d``/``BasisConv2d``, in execution order, with MACs from ``count_macs``.

    ``example_input``: a tensor or a shape (``(1, 3, 224, 224)``; batch 1 gives costs per example). One forward
    pass (eval mode, hooks) records each conv's input shape; each layer is then counted alone on that shape, so
    per-layer MACs add up to the model's conv MACs. These records are a model's candidates for conversion.
    """
    shapes: dict[str, tuple] = {}

    def record(name):
        def hook(module, inputs, output):  # returns None: a forward hook's return value would replace the output
            shapes.setdefault(name, (tuple(inputs[0].shape), tuple(output.shape)))
        return hook

    hooks = [m.register_forward_hook(record(name)) for name, m in model.named_modules()
             if isinstance(m, (nn.Conv2d, BasisConv2d))]
    x = example_tensor(model, example_input)
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    records = []
    modules = dict(model.named_modules())
    for name, (in_shape, out_shape) in shapes.items():  # dict keeps execution order
        m = modules[name]
        records.append(ConvLayer(
            name=name, kind="basis" if isinstance(m, BasisConv2d) else "conv",
            in_channels=m.in_channels, out_channels=m.out_channels, kernel_size=tuple(m.kernel_size),
            stride=tuple(m.stride), input_hw=tuple(in_shape[2:]), output_hw=tuple(out_shape[2:]),
            params=count_params(m), macs=count_macs(m, in_shape),
            rank=m.rank if isinstance(m, BasisConv2d) else None))
    return records


def _resolve_selection(model: nn.Module, layers, ratio) -> dict[str, float]:
    if isinstance(layers, Selection):  # its own ratios, whatever ``ratio`` says
        layers, ratio = list(layers.layers), dict(layers.ratios)
    valid = convertible_names(model)
    valid_set = set(valid)

    def unknown(bad, what):
        raise ValueError(f"unknown {what} {bad!r}; valid layer names: {', '.join(valid)}")

    if isinstance(ratio, dict):
        for name, r in ratio.items():
            if name not in valid_set:
                unknown(name, "layer in ratio dict")
            check_ratio(r, f"ratio[{name!r}]")
    else:
        check_ratio(ratio)
    if isinstance(layers, str) and layers == "all":
        names = list(ratio) if isinstance(ratio, dict) else valid
    elif isinstance(layers, str):
        names = [layers]
    else:
        names = list(layers)
    if not names:
        raise ValueError(f"empty layer selection {layers!r}; pass 'all' or some of: {', '.join(valid)}")
    for n in names:
        if n not in valid_set:
            unknown(n, "layer")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"layer selection names {dup} more than once")
    if isinstance(ratio, dict):
        missing = [n for n in names if n not in ratio]
        if missing:
            raise ValueError(f"ratio dict has no entry for selected layers {missing}")
        extra = [n for n in ratio if n not in names]
        if extra:
            raise ValueError(f"ratio dict names layers {extra} that are not in the selection {names}")
        return {n: float(ratio[n]) for n in names}
    return {n: float(ratio) for n in names}


def convert(model: nn.Module, layers="all", *, ratio=0.5, coeff: str = "reduced", init: str = "qr") -> nn.Module:
    """A copy of ``model`` with the named convolutions replaced by ``BasisConv2d`` (the input is untouched).

    ``layers``: ``"all"`` (every convertible conv, or the keys of a ratio dict), dotted names, or a ``Selection``
    (``select_layers``'s; its ratios are used). ``"all"`` is wider than ``sensitivity.candidate_layers``' default
    (3x3 convs only): it takes every plain conv, the stem and the 1x1 shortcuts included; pass
    ``candidate_layers(model)`` for the layers the search considers. ``ratio``: a float
    in (0, 1] or ``{name: ratio}``; rank per layer is ``max(1, round(ratio * C_out))``. ``coeff``/``init`` as in
    ``BasisConv2d.from_conv``. Everything is validated before any module is built.
    """
    check_choice(coeff, COEFF_CHOICES, "coeff")
    check_choice(init, INIT_CHOICES, "init")
    selection = _resolve_selection(model, layers, ratio)
    new = copy.deepcopy(model)
    for name, r in selection.items():
        parent_name, _, attr = name.rpartition(".")
        parent = new.get_submodule(parent_name) if parent_name else new
        old = getattr(parent, attr)
        layer = BasisConv2d.from_conv(old, ratio=r, coeff=coeff, init=init)
        layer.train(old.training)
        setattr(parent, attr, layer)
    return new


def fold(model: nn.Module, layers="all") -> nn.Module:
    """A copy of ``model`` with basis layers folded back into dense ``nn.Conv2d`` (``BasisConv2d.to_conv``)."""
    basis = [n for n, m in model.named_modules() if isinstance(m, BasisConv2d)]
    names = basis if layers == "all" else list(layers)
    for n in names:
        if n not in basis:
            raise ValueError(f"unknown basis layer {n!r}; basis layers: {', '.join(basis) or '(none)'}")
    new = copy.deepcopy(model)
    for name in names:
        parent_name, _, attr = name.rpartition(".")
        parent = new.get_submodule(parent_name) if parent_name else new
        setattr(parent, attr, getattr(parent, attr).to_conv())
    return new
