"""Stage ``sensitivity``: the per-layer sensitivity search and the layer selection (arXiv 2408.06024).

For every candidate conv ``l`` and ratio ``q`` only that layer of the trained baseline becomes a basis layer of rank
``r = round(q C_out)`` and a cheap proxy measures the drop in validation accuracy,

    delta(l, q) = 100 * (acc(proxy(baseline)) - acc(proxy(convert(baseline, {l: q}))))      (points)

with a paired interval over the same images (``basisconv.core.sensitivity``). A greedy knapsack then picks layers and
per-layer ratios with the most ``sensitivity.objective`` saved per point of predicted loss within
``sensitivity.max_loss``; random, largest-first and spectral (singular-value energy threshold) subsets matched to
the selection's parameter savings (and largest-first matched to its MAC saving) are the comparison variants of the
basis stage. Two models are searched (``MODELS``): the trained baseline, whose selection the late conversion uses,
and seed 0's baseline at ``basis.switch_epoch``, whose selection the training schedules (scratch, switch) use: a user
who switches at epoch S has only that model to search on. Each sweep's rows are appended to a resume log keyed by
the sensitivity, model and seed params, the content of the searched model and ``data/prepared``, and this module's
code closure. With ``sensitivity.resolution_size`` the rows also hold the drops on that many of the evaluation
images, and the selection made from them says whether fewer images would select the same layers.
"""
from __future__ import annotations

import pandas as pd
import torch

from basisconv.perf.bench import make_layer_timer
from basisconv.experiment.precision import precision_name
from basisconv.experiment.data import stratified_subset
from basisconv.experiment.io import read_json, write_frame, write_json, write_metrics
from basisconv.pipeline.keys import key_of
from basisconv.pipeline.layout import STAGES
from basisconv.experiment import search as search_data
from basisconv.experiment.models import INPUT_SHAPE, build_model
from basisconv.pipeline.resume import resume_log
from basisconv.core.selection import select_layers
from basisconv.core.sensitivity import ProxyConfig, candidate_layers, layer_sensitivity
from basisconv.core.surgery import conv_layers
from basisconv.pipeline import variants
from basisconv.pipeline.stages import common

L = STAGES["sensitivity"]


# the models a sweep searches: the trained baseline (the late conversion's selection), and seed 0's baseline at the
# switch epoch (the selection of the training schedules, scratch and switch: what a user who switches at epoch S has)
MODELS = {"final": "model", "switch": "switch_model"}


def searched_models(P: dict) -> list[str]:
    """The models this run searches (``MODELS``): always the final baseline; the switch-epoch snapshot where a
    training schedule (scratch or switch) trains basis layers."""
    from basisconv.pipeline.variants import trained_schedules
    return ["final"] + (["switch"] if {"scratch", "switch"} & set(trained_schedules(P["basis"])) else [])


def trained_baseline(P: dict, model: str = "final") -> torch.nn.Module:
    """The baseline stage's model (``models/baseline.pt``), or (``model="switch"``) its seed-0 weights at the switch
    epoch (``models/baseline_switch.pt``)."""
    net = build_model(P["model"]["arch"], width=P["model"]["width"])
    net.load_state_dict(torch.load(L[MODELS[model]], weights_only=True))
    return net


def sweep_val(S: dict, D: dict):
    """The sweep's validation images: the val split, or its stratified ``sensitivity.eval_size`` subset."""
    val, n = D["val"], S["eval_size"]
    if n:
        keep = stratified_subset(val[1], n, 0)
        val = (val[0][keep], val[1][keep])
    return val


def resolution_subset(S: dict, val) -> torch.Tensor | None:
    """Indices (into the sweep's images) of the stratified ``sensitivity.resolution_size`` subset the rows also
    score on (``None`` without one): the images a smaller sweep would have used, so the selection made from them
    says whether fewer images select the same layers."""
    n = S["resolution_size"]
    return stratified_subset(val[1], n, 0) if 0 < n < len(val[1]) else None


def proxy_config(P: dict) -> ProxyConfig:
    S = P["sensitivity"]
    return ProxyConfig(init=S["init"], coeff=S["coeff"], bn_batches=S["bn_batches"],
                       finetune_steps=S["finetune_steps"], finetune_lr=S["finetune_lr"], seed=P["train"]["seeds"][0],
                       amp=common.resolved_train(P["train"])["amp"])


# sensitivity params read only after the sweep (selection) or that only split the work: not part of the rows' key,
# so a new loss budget re-selects from the same rows and a split sweep merges into the same resume log
NOT_IN_ROWS = ("selection_proxy", "objective", "max_loss", "workers")


def measured_params(S: dict) -> dict:
    """The sensitivity params the rows depend on; the objective only as far as it decides whether layers are timed
    (``time_saved_ms`` is measured for the ``time`` objective alone)."""
    return {**{k: v for k, v in S.items() if k not in NOT_IN_ROWS}, "time_layers": S["objective"] == "time"}


def sweep_inputs(P: dict, model: str = "final") -> dict:
    """What one sweep's rows depend on: the params that reach them, the searched model's and the splits' content,
    the code."""
    return common.inputs("sensitivity", {"sensitivity": measured_params(P["sensitivity"]), "model": P["model"],
                                         "seed": P["train"]["seeds"][0],
                                         "amp": common.resolved_train(P["train"])["amp"]},
                         sections=("sensitivity", "model", "seed", "amp"), files=[L[MODELS[model]], L["prepared"]])


def _row_key(r: dict) -> tuple:
    return r["layer"], r["ratio"], r["proxy"]


def sort_rows(rows: list[dict], layers: list[str]) -> list[dict]:
    """Deterministic order: proxy, then layer in model order, then ratio (whoever measured what)."""
    pos = {n: i for i, n in enumerate(layers)}
    return sorted(rows, key=lambda r: (r["proxy"], pos.get(r["layer"], len(pos)), r["ratio"]))


def sweep(P: dict, net, layers: list[str], D: dict, val, device, key: str, *, shard=(0, 1), progress=True) -> list[dict]:
    """Run (this worker's part of) the sweep into the resume log of ``key``; returns every row measured so far."""
    S = P["sensitivity"]
    rows, keep_row = resume_log(L["runs"], key, shard, _row_key, kept_dir=common.kept_dir("sensitivity", P))
    cfg = proxy_config(P)
    time_saved = None
    if S["objective"] == "time":  # the time saved is measured only where the knapsack spends it
        # in the precision the proxies (and the training) run in, the one the saving is claimed for
        timer = make_layer_timer(S["batch_size"], device=device, min_run_time=0.1, precision=precision_name(cfg.amp))
        cache = {}

        def time_saved(conv, basis_layer, rec):  # measured once per (layer, rank), shared by the proxies
            ck = (rec.name, basis_layer.rank)
            if ck not in cache:
                cache[ck] = timer(conv, basis_layer, rec)
            return cache[ck]

    layer_sensitivity(net.to(device), layers, S["ratios"], S["proxies"],
                      search_data.train_batches(D["train"], S["batch_size"], seed=cfg.seed, device=device),
                      search_data.correctness(val, device=device, amp=cfg.amp), (1, *INPUT_SHAPE), cfg,
                      confidence=S["confidence"], time_layer=time_saved,
                      done={_row_key(r) for r in rows}, on_row=lambda r: keep_row(r.to_dict()), progress=progress,
                      shard=shard,
                      subset=resolution_subset(S, val))
    return sort_rows(rows, layers)


def comparisons(P: dict, net, layers: list[str], sel: dict, ratios) -> dict:
    """The comparison subsets at the selection's savings, one per comparison run of the registry
    (``basisconv.pipeline.variants``: ``random<k>`` drawn for every training seed, ``largest``, ``largest_macs``,
    ``spectral``)."""
    if not sel["layers"]:
        return {}
    match = variants.Match(conv_layers(net, (1, *INPUT_SHAPE)), layers, sel["params_saved"], ratios,
                           P["basis"]["coeff"], net, target_macs=sel["macs_saved"])
    return variants.comparison_runs(P["basis"], match, P["train"]["seeds"])


def select(P: dict, rows: list[dict], layers: list[str], net, max_loss: float, key: str = "delta_acc") -> dict:
    """The knapsack's selection at ``max_loss`` from ``rows`` (``key``: which drop it reads), with its comparison
    subsets."""
    S = P["sensitivity"]
    use = rows if key == "delta_acc" else [{**r, "delta_acc": r[key]} for r in rows]
    sel = select_layers(use, proxy=S["selection_proxy"], objective=S["objective"], max_loss=max_loss,
                        order=layers).to_dict()
    return {**sel, "comparisons": comparisons(P, net, layers, sel, S["ratios"])}


def search(P: dict, model: str, D: dict, device, progress=True) -> tuple[list[dict], dict, dict]:
    """One model's sweep and its selections: ``(rows, selection, inputs)``. The selection holds the candidates, the
    comparison subsets, the fronts (the selection at every ``basis.front_budgets`` budget, where this model's
    selection is the front schedule's), the resolution check and the search's measured seconds."""
    from basisconv.pipeline.plan import selection_model
    S, B = P["sensitivity"], P["basis"]
    net = trained_baseline(P, model)
    layers = candidate_layers(net, S["include"], S["exclude"], S["kernel_sizes"])
    inputs = sweep_inputs(P, model)
    key = key_of(inputs)
    val = sweep_val(S, D)
    rows = sweep(P, net, layers, D, val, device, key, shard=common.worker_shard(), progress=progress)
    if common.under_torchrun():
        return rows, {}, inputs
    sel = select(P, rows, layers, net, S["max_loss"])
    fronts = {}  # the selection at each extra loss budget, with its own matched comparison subsets
    if B.get("front_schedule") and selection_model(B["front_schedule"]) == model:
        for b in B["front_budgets"]:
            fronts[variants.budget_point(b)] = {**select(P, rows, layers, net, b), "max_loss": b}
    resolution = None
    if rows and "delta_acc_subset" in rows[0]:  # the same selection made from fewer evaluation images
        few = select(P, rows, layers, net, S["max_loss"], key="delta_acc_subset")
        resolution = {"eval_images": int(rows[0]["n_val"]), "subset_images": int(rows[0]["n_val_subset"]),
                      "layers": few["layers"], "ratios": few["ratios"],
                      "same_selection": (few["layers"], few["ratios"]) == (sel["layers"], sel["ratios"])}
    # the search's cost: the sum of every option's measured wall time (each row's seconds include its share of the
    # controls), which stays right when the sweep was resumed or split over workers
    seconds = float(sum(r["seconds"] for r in rows))
    sel.update(candidates=layers, fronts=fronts, resolution=resolution, model=model, key=key, search_seconds=seconds)
    return [{**r, "model": model} for r in rows], sel, inputs


def run(P: dict, progress=True) -> dict:
    """Sweep every searched model, select, match comparison subsets. Returns ``{"rows" (DataFrame), "selection",
    "layers"}``; the selection of the final model is the top level of ``selection.json``, the switch-epoch
    snapshot's is its ``at_switch``."""
    device = common.setup(P["train"])
    if P["sensitivity"]["workers"] > 1 and not common.under_torchrun():
        common.launch("sensitivity", P["sensitivity"]["workers"], P)  # workers fill the resume logs; merged below
    D, meta = common.load_splits()
    found = {m: search(P, m, D, device, progress) for m in searched_models(P)}
    if common.under_torchrun():
        return {"rows": [r for rows, _, _ in found.values() for r in rows]}
    baseline = read_json(L["baseline"])
    df = pd.DataFrame([r for rows, _, _ in found.values() for r in rows])
    df["data"] = meta["label"]
    write_frame(L["rows"], df)
    sel = found["final"][1]
    for m, (_, s, _) in found.items():
        s.update(search_cost_fraction=s["search_seconds"] / baseline["train_time"])
    sel.update(data=meta["label"], profile=P["profile"], baseline_train_seconds=baseline["train_time"],
               params_resolved=P, **({"at_switch": found["switch"][1]} if "switch" in found else {}))
    write_json(L["selection"], sel)
    write_metrics(L["metrics"], {"layers": len(sel["layers"]), "search_cost": sel["search_cost_fraction"]})
    # the final model's sweep at the top level; every searched model's under "models"
    common.write_provenance("sensitivity", {"key": sel["key"], **found["final"][2],
                                            "models": {m: {"key": s["key"], **i} for m, (_, s, i) in found.items()},
                                            "stage_inputs": common.inputs("sensitivity", P)})
    return {"rows": df, "selection": sel, "layers": sel["candidates"], "data": meta}
