"""Layer selection under a budget from the sensitivity rows (arXiv 2408.06024, the sensitivity-based basis search).

``select_layers`` is a greedy knapsack: options (layer, ratio) of one proxy are taken in order of saving (params,
MACs or measured time) per point of predicted loss while the summed loss stays within ``max_loss``; each layer at
most once. It returns a ``Selection``, which ``convert(model, selection)`` applies. ``matched_subset`` builds the
comparison subsets (random, largest-first) at the selection's parameter or MAC saving.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from basisconv.core.basis import check_ratio, resolve_rank
from basisconv.core.checks import check_choice
from basisconv.core.counting import basis_params_saved

OBJECTIVES = ("params", "macs", "time")


@dataclass(frozen=True)
class Selection:
    """Layers chosen for conversion, each with its ratio, and what the rows predict of them.

    ``predicted_loss``: the summed proxy drops (points); ``params_saved``/``macs_saved``/``time_saved_ms``: the
    summed savings of the chosen options; ``method``: how it was chosen. ``convert(model, selection)`` applies it;
    ``to_dict()`` is its JSON form."""
    layers: list[str]
    ratios: dict[str, float]
    predicted_loss: float = 0.0
    params_saved: int = 0
    macs_saved: int = 0
    time_saved_ms: float = 0.0
    method: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def select_layers(rows, *, proxy: str, objective: str = "params", max_loss: float = 0.5, order=None) -> Selection:
    """Greedy knapsack over (layer, ratio) options of ``proxy``: most ``objective`` saved per point of loss first.

    Loss per option is ``max(delta_acc, 0)`` (an improvement is not spent on other layers); options are sorted by
    ``(-saving/max(loss, 1e-3), -saving, layer order, ratio)`` so ties resolve deterministically, and each is taken
    if its layer is not chosen yet and the summed loss stays within ``max_loss``.
    """
    check_choice(objective, OBJECTIVES, "objective")
    if not (isinstance(max_loss, (int, float)) and max_loss >= 0):
        raise ValueError(f"max_loss must be a number >= 0 (points), got {max_loss!r}")
    key = {"params": "params_saved", "macs": "macs_saved", "time": "time_saved_ms"}[objective]
    opts = [r for r in rows if r["proxy"] == proxy]
    if not opts:
        proxies = sorted({r["proxy"] for r in rows})
        raise ValueError(f"no sensitivity rows for proxy {proxy!r}; measured proxies: {proxies}")
    if any(r[key] is None for r in opts):
        raise ValueError(f"objective {objective!r} needs {key} in every row")
    order = order or list(dict.fromkeys(r["layer"] for r in opts))
    pos = {n: i for i, n in enumerate(order)}

    def sort_key(r):
        loss = max(r["delta_acc"], 0.0)
        return (-r[key] / max(loss, 1e-3), -r[key], pos[r["layer"]], r["ratio"])

    chosen, total = {}, 0.0
    for r in sorted(opts, key=sort_key):
        loss = max(r["delta_acc"], 0.0)
        if r["layer"] in chosen or r[key] <= 0 or total + loss > max_loss + 1e-12:
            continue
        chosen[r["layer"]] = r
        total += loss
    layers = [n for n in order if n in chosen]
    return Selection(layers=layers, ratios={n: chosen[n]["ratio"] for n in layers}, predicted_loss=total,
                     params_saved=sum(chosen[n]["params_saved"] for n in layers),
                     macs_saved=sum(chosen[n]["macs_saved"] for n in layers),
                     time_saved_ms=sum(chosen[n]["time_saved_ms"] or 0.0 for n in layers),
                     method={"proxy": proxy, "objective": objective, "max_loss": max_loss,
                             "algorithm": "greedy knapsack"})


MEASURES = ("params", "macs")


def matched_subset(records, candidates: list[str], target: int, ratios, *, order: str = "random",
                   seed: int = 0, coeff: str = "reduced", measure: str = "params") -> dict:
    """A layer subset, each layer at one of ``ratios``, whose saving of ``measure`` (parameters, or MACs of one
    forward pass: a conv's MACs are its weights times its output pixels) is as close to ``target`` as a greedy pass
    gets: the comparison variants at equal savings.

    Layers are visited in ``order`` (``random`` with ``seed``, or ``largest`` first: most ``measure`` first, ties
    broken by parameters, then by the candidates' order); each takes the ratio
    (or none) that brings the total closest to the target, ties to the larger (gentler) ratio. The comparison
    subsets thus get the same freedom of ratios as the selection and differ only in which layers they pick; a
    single ratio could neither reach every target (the selection may save more than all layers at 0.5) nor land
    near it (one big layer can overshoot by a third of the target).
    """
    check_choice(measure, MEASURES, "measure")
    recs = {r.name: r for r in records if r.name in candidates}
    ratios = sorted({float(check_ratio(q)) for q in ratios}, reverse=True)
    if order == "random":
        g = torch.Generator().manual_seed(seed)
        seq = [candidates[i] for i in torch.randperm(len(candidates), generator=g).tolist()]
    elif order == "largest":
        seq = sorted(candidates, key=lambda n: (-getattr(recs[n], measure), -recs[n].params, candidates.index(n)))
    else:
        raise ValueError(f"unknown order {order!r}; valid choices: random, largest")

    def params(n, q):
        r = recs[n]
        return basis_params_saved(r.in_channels, r.out_channels, r.kernel_size[0],
                                  resolve_rank(r.out_channels, ratio=q), coeff)

    def macs(n, q):  # per output pixel a conv (no bias) multiplies each weight once
        return params(n, q) * recs[n].output_hw[0] * recs[n].output_hw[1]
    saving = params if measure == "params" else macs
    chosen, saved = {}, 0
    for n in seq:
        best = min(ratios, key=lambda q: abs(saved + saving(n, q) - target))
        if abs(saved + saving(n, best) - target) < abs(saved - target):
            chosen[n] = best
            saved += saving(n, best)
    if not chosen:  # a target below every single option's saving: the first layer at the gentlest ratio
        chosen = {seq[0]: ratios[0]}
    layers = [n for n in candidates if n in chosen]
    return {"layers": layers, "ratios": {n: chosen[n] for n in layers},
            "params_saved": sum(params(n, chosen[n]) for n in layers),
            "macs_saved": sum(macs(n, chosen[n]) for n in layers), "matched_on": measure,
            "order": order, "seed": seed if order == "random" else None}
