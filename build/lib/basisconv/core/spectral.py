"""The data-free spectral baseline for the layer search of arXiv 2408.06024: ranks from retained singular-value energy.

The closest published peer of the sensitivity search chooses basis filters without any data: a layer's filters
``W`` (``C_out x C_in k^2``) keep the smallest rank whose singular values retain a fixed share of the energy
(Tayyab et al., ICIP 2021, basis filters with an energy threshold; VBMF-style rank selection is the same family).
For rank ``r`` and singular values ``s_1 >= s_2 >= ...``

    E_l(r) = sum_{i <= r} s_i^2 / sum_i s_i^2                                    (retained energy, in [0, 1])

With one global threshold ``tau`` each candidate layer takes the smallest swept ratio whose rank keeps
``E_l(r) >= tau``, or stays dense when none does. Lowering ``tau`` only ever lowers ranks, so the parameter saving
grows monotonically as ``tau`` falls; ``spectral_subset`` scans every distinct ``E_l(r)`` as ``tau`` and keeps the
one whose saving is closest to the selection's (ties: the higher, gentler threshold). The basis stage trains that
subset with the same schedule as the other comparison subsets, so "sensitivity search vs. spectral criterion" is a
paired comparison at matched parameter savings.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from basisconv.core.basis import check_ratio, resolve_rank
from basisconv.core.counting import basis_params_saved


def retained_energy(weight: torch.Tensor, ranks) -> dict[int, float]:
    """``E(r)`` for every ``r`` of ``ranks``: the share of ``||W||_F^2`` kept by the best rank-``r`` approximation
    of the filter matrix ``W.reshape(C_out, -1)`` (Eckart-Young). Ranks beyond the matrix rank keep everything."""
    s2 = torch.linalg.svdvals(weight.detach().double().reshape(weight.shape[0], -1)) ** 2  # descending, (min(C_out, C_in k^2),)
    total = float(s2.sum())
    if total == 0:
        return {int(r): 1.0 for r in ranks}
    cum = torch.cumsum(s2, 0) / total
    return {int(r): (1.0 if r >= len(cum) else float(cum[int(r) - 1])) for r in ranks}


def layer_energies(model: nn.Module, candidates: list[str], ratios) -> dict[str, dict[float, float]]:
    """``{layer: {ratio: E_l(rank(ratio))}}`` over the candidate convs of a trained ``model``."""
    out = {}
    for n in candidates:
        w = model.get_submodule(n).weight
        ranks = {float(q): resolve_rank(w.shape[0], ratio=q) for q in ratios}
        e = retained_energy(w, set(ranks.values()))
        out[n] = {q: e[r] for q, r in ranks.items()}
    return out


def spectral_subset(model: nn.Module, candidates: list[str], target_params: int, ratios, *,
                    coeff: str = "reduced") -> dict:
    """The energy-threshold subset whose parameter saving is closest to ``target_params`` (see the module docstring).

    Returns the comparison-subset dict of ``selection.matched_subset`` (``layers``, ``ratios``, ``params_saved``,
    ``order``) plus ``threshold`` (the chosen ``tau``) and ``energy`` (``E_l`` at each chosen layer's ratio).
    """
    if not candidates:
        raise ValueError("spectral_subset needs at least one candidate layer")
    ratios = sorted({float(check_ratio(q)) for q in ratios})  # ascending: the smallest admissible ratio saves most
    energy = layer_energies(model, candidates, ratios)

    def saving(n, q):
        c = model.get_submodule(n)
        return basis_params_saved(c.in_channels, c.out_channels, c.kernel_size[0],
                                  resolve_rank(c.out_channels, ratio=q), coeff)

    def assign(tau):
        chosen = {}
        for n in candidates:
            q = next((q for q in ratios if energy[n][q] >= tau - 1e-12), None)
            if q is not None:
                chosen[n] = q
        return chosen

    best = None
    for tau in sorted({e for per in energy.values() for e in per.values()}, reverse=True):
        chosen = assign(tau)
        saved = sum(saving(n, q) for n, q in chosen.items())
        gap = abs(saved - target_params)
        if best is None or gap < best[0]:  # strict: ties keep the higher threshold, met first
            best = (gap, tau, chosen, saved)
    _, tau, chosen, saved = best
    layers = [n for n in candidates if n in chosen]
    return {"layers": layers, "ratios": {n: chosen[n] for n in layers}, "params_saved": saved, "order": "spectral",
            "seed": None, "threshold": tau, "energy": {n: energy[n][chosen[n]] for n in layers}}
