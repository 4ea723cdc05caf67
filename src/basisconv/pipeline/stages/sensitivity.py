"""Stage ``sensitivity``: the per-layer sensitivity search and the layer selection (arXiv 2408.06024).

For every candidate conv ``l`` and ratio ``q`` only that layer of the trained baseline becomes a basis layer of rank
``r = round(q C_out)`` and a cheap proxy measures the drop in validation accuracy,

    delta(l, q) = 100 * (acc(proxy(baseline)) - acc(proxy(convert(baseline, {l: q}))))      (points)

with a paired interval over the same images (``basisconv.core.sensitivity``). A greedy knapsack then picks layers and
per-layer ratios with the most ``sensitivity.objective`` saved per point of predicted loss within
``sensitivity.max_loss``; random, largest-first and spectral (singular-value energy threshold) subsets matched to
the selection's parameter savings are the comparison variants of the basis stage. Sweep rows are appended to a resume log keyed by the sensitivity, model and
seed params, the content of ``models/baseline.pt`` and ``data/prepared``, and this module's code closure.
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
from basisconv.experiment import search
from basisconv.experiment.models import INPUT_SHAPE, build_model
from basisconv.pipeline.resume import resume_log
from basisconv.core.selection import select_layers
from basisconv.core.sensitivity import ProxyConfig, candidate_layers, layer_sensitivity
from basisconv.core.surgery import conv_layers
from basisconv.pipeline import variants
from basisconv.pipeline.stages import common

L = STAGES["sensitivity"]


def trained_baseline(P: dict) -> torch.nn.Module:
    """The baseline stage's model (``models/baseline.pt``)."""
    net = build_model(P["model"]["arch"], width=P["model"]["width"])
    net.load_state_dict(torch.load(L["model"], weights_only=True))
    return net


def sweep_val(S: dict, D: dict):
    """The sweep's validation images: the val split, or its stratified ``sensitivity.eval_size`` subset."""
    val, n = D["val"], S["eval_size"]
    if n:
        keep = stratified_subset(val[1], n, 0)
        val = (val[0][keep], val[1][keep])
    return val


def proxy_config(P: dict) -> ProxyConfig:
    S = P["sensitivity"]
    return ProxyConfig(init=S["init"], coeff=S["coeff"], bn_batches=S["bn_batches"],
                       finetune_steps=S["finetune_steps"], finetune_lr=S["finetune_lr"], seed=P["train"]["seeds"][0],
                       amp=common.resolved_train(P["train"])["amp"])


# sensitivity params read only after the sweep (selection) or that only split the work: not part of the rows' key,
# so a new loss budget re-selects from the same rows and a split sweep merges into the same resume log
NOT_IN_ROWS = ("selection_proxy", "objective", "max_loss", "workers")


def measured_params(S: dict) -> dict:
    return {k: v for k, v in S.items() if k not in NOT_IN_ROWS}


def sweep_inputs(P: dict) -> dict:
    """What the sweep's rows depend on: the params that reach them, the baseline's and the splits' content, the
    code."""
    return common.inputs("sensitivity", {"sensitivity": measured_params(P["sensitivity"]), "model": P["model"],
                                         "seed": P["train"]["seeds"][0],
                                         "amp": common.resolved_train(P["train"])["amp"]},
                         sections=("sensitivity", "model", "seed", "amp"), files=[L["model"], L["prepared"]])


def _row_key(r: dict) -> tuple:
    return r["layer"], r["ratio"], r["proxy"]


def sort_rows(rows: list[dict], layers: list[str]) -> list[dict]:
    """Deterministic order: proxy, then layer in model order, then ratio (whoever measured what)."""
    pos = {n: i for i, n in enumerate(layers)}
    return sorted(rows, key=lambda r: (r["proxy"], pos.get(r["layer"], len(pos)), r["ratio"]))


def sweep(P: dict, net, layers: list[str], D: dict, val, device, key: str, *, shard=(0, 1), progress=True) -> list[dict]:
    """Run (this worker's part of) the sweep into the resume log of ``key``; returns every row measured so far."""
    S = P["sensitivity"]
    rows, keep_row = resume_log(L["runs"], key, shard, _row_key)
    cfg = proxy_config(P)
    # time saved in the precision the proxies (and the training) run in, the one the saving is claimed for
    timer = make_layer_timer(S["batch_size"], device=device, min_run_time=0.1, precision=precision_name(cfg.amp))
    cache = {}

    def time_saved(conv, basis_layer, rec):  # measured once per (layer, rank), shared by both proxies
        ck = (rec.name, basis_layer.rank)
        if ck not in cache:
            cache[ck] = timer(conv, basis_layer, rec)
        return cache[ck]

    layer_sensitivity(net.to(device), layers, S["ratios"], S["proxies"],
                      search.train_batches(D["train"], S["batch_size"], seed=cfg.seed, device=device),
                      search.correctness(val, device=device, amp=cfg.amp), (1, *INPUT_SHAPE), cfg,
                      confidence=S["confidence"], time_layer=time_saved,
                      done={_row_key(r) for r in rows}, on_row=keep_row, progress=progress, shard=shard)
    return sort_rows(rows, layers)


def comparisons(B: dict, net, layers: list[str], sel: dict, ratios) -> dict:
    """The comparison subsets at the selection's parameter savings, one per comparison run of the registry
    (``basisconv.pipeline.variants``: ``random<k>``, ``largest``, ``spectral``)."""
    if not sel["layers"]:
        return {}
    match = variants.Match(conv_layers(net, (1, *INPUT_SHAPE)), layers, sel["params_saved"], ratios, B["coeff"], net)
    return variants.comparison_runs(B, match)


def run(P: dict, progress=True) -> dict:
    """Sweep, select, match comparison subsets. Returns ``{"rows" (DataFrame), "selection", "layers"}``."""
    S = P["sensitivity"]
    device = common.setup(P["train"])
    D, meta = common.load_splits()
    net = trained_baseline(P)
    layers = candidate_layers(net, S["include"], S["exclude"], S["kernel_sizes"])
    inputs = sweep_inputs(P)
    key = key_of(inputs)
    if S["workers"] > 1 and not common.under_torchrun():
        common.launch("sensitivity", S["workers"], P)  # workers fill the resume log; merged below
    shard = common.worker_shard()
    rows = sweep(P, net, layers, D, sweep_val(S, D), device, key, shard=shard, progress=progress)
    if common.under_torchrun():
        return {"rows": rows}
    # the search's cost: the sum of every option's measured wall time (each row's seconds include its share of the
    # controls), which stays right when the sweep was resumed or split over workers
    search_seconds = float(sum(r["seconds"] for r in rows))
    df = pd.DataFrame(rows)
    df["data"] = meta["label"]
    write_frame(L["rows"], df)
    sel = select_layers(rows, proxy=S["selection_proxy"], objective=S["objective"], max_loss=S["max_loss"],
                        order=layers).to_dict()
    baseline = read_json(L["baseline"])
    fronts = {}  # the selection at each extra loss budget, with its own matched comparison subsets
    for b in P["basis"]["front_budgets"]:
        f = select_layers(rows, proxy=S["selection_proxy"], objective=S["objective"], max_loss=b,
                          order=layers).to_dict()
        fronts[variants.budget_point(b)] = {**f, "max_loss": b,
                                            "comparisons": comparisons(P["basis"], net, layers, f, S["ratios"])}
    sel.update(candidates=layers, comparisons=comparisons(P["basis"], net, layers, sel, S["ratios"]), fronts=fronts,
               data=meta["label"], profile=P["profile"], search_seconds=search_seconds,
               baseline_train_seconds=baseline["train_time"],
               search_cost_fraction=search_seconds / baseline["train_time"], params_resolved=P)
    write_json(L["selection"], sel)
    write_metrics(L["metrics"], {"layers": len(sel["layers"]), "search_cost": sel["search_cost_fraction"]})
    common.write_provenance("sensitivity", {"key": key, **inputs, "stage_inputs": common.inputs("sensitivity", P)})
    return {"rows": df, "selection": sel, "layers": layers, "data": meta}
