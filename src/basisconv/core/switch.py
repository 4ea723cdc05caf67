"""The paper's switch: convert layers in the middle of training, keeping the optimiser's state (arXiv 2408.06024).

The cheap "skip"/switch schedule trains the dense model for the first epochs, then replaces the chosen convs by
basis layers initialised from their trained filters (``convert``, QR by default) and trains on. ``switch`` is that
step for any training loop: model and optimiser in, converted model and a rebuilt optimiser of the same class out.
Every parameter that survives the conversion unchanged (same dotted name, same shape) keeps its optimiser state
(SGD's momentum buffer, Adam's moments, ...) and stays in its parameter group; a basis layer's new parameters join
the group of the conv they replace. Group settings (lr, momentum, weight decay ...) are carried over as they are
at the switch, so a schedule that sets ``lr`` per step goes on undisturbed.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from basisconv.core.basis import BasisConv2d
from basisconv.core.surgery import convert


def _group_of(name: str, groups: dict[str, int], replaced: list[str]) -> int | None:
    """The parameter group of a parameter of the converted model: its own name's, else (a basis layer's new
    parameter) the group of the conv weight it replaces; ``None`` where that was not optimised (frozen stays
    frozen)."""
    if name in groups:
        return groups[name]
    owner = next((l for l in replaced if name.startswith(l + ".")), None)
    return groups.get(f"{owner}.weight") if owner is not None else None


def switch(model: nn.Module, optimizer: torch.optim.Optimizer, layers, *, ratio=0.5, coeff: str = "reduced",
           init: str = "qr", memory_format=None,
           scheduler: torch.optim.lr_scheduler.LRScheduler | None = None) -> tuple[nn.Module, torch.optim.Optimizer]:
    """``(converted model, rebuilt optimizer)``: ``layers`` of ``model`` (``convert``'s ``layers``/``ratio``/
    ``coeff``/``init``; a ``Selection`` brings its own ratios) replaced by basis layers (``from_conv`` builds each
    on its conv's device; the model is put in ``memory_format`` if given), and an optimiser of ``optimizer``'s
    class whose surviving parameters keep their state and group. The input model and optimiser are not modified;
    use the returned pair from the next step on.

    ``scheduler``: the learning-rate scheduler driving ``optimizer``; it is carried over to the new optimiser (it
    steps the new optimiser's groups from the next ``scheduler.step()`` on, its position in the schedule kept)."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    old = dict(model.named_parameters())
    name_of = {id(p): n for n, p in old.items()}
    groups = {name_of[id(p)]: gi for gi, g in enumerate(optimizer.param_groups) for p in g["params"]
              if id(p) in name_of}
    new = convert(model, layers, ratio=ratio, coeff=coeff, init=init)
    if memory_format is not None:
        new = new.to(memory_format=memory_format)
    old_modules = dict(model.named_modules())
    replaced = [n for n, m in new.named_modules()
                if isinstance(m, BasisConv2d) and not isinstance(old_modules.get(n), BasisConv2d)]
    members = [[] for _ in optimizer.param_groups]
    for name, p in new.named_parameters():
        g = _group_of(name, groups, replaced)
        if g is not None:
            members[g].append(p)
    opt = type(optimizer)([{**{k: v for k, v in g.items() if k != "params"}, "params": ps}
                           for g, ps in zip(optimizer.param_groups, members)], **optimizer.defaults)
    for name, p in new.named_parameters():
        st = optimizer.state.get(old[name], {}) if name in old else {}
        if st and old[name].shape == p.shape:
            opt.state[p] = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in st.items()}
    if scheduler is not None:
        if getattr(scheduler, "optimizer", None) is not optimizer:
            raise ValueError("scheduler does not drive the optimizer given to switch: pass the scheduler of that "
                             "optimizer")
        # the groups (with the scheduler's own keys: initial_lr, max_lr ...) were copied above, so re-pointing the
        # scheduler is all it needs; its step count and last lr stay as they are
        scheduler.optimizer = opt
    return new, opt
