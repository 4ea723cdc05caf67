"""Stage ``faithfulness``: is the fast proxy right? Proxy drops against real retraining (arXiv 2408.06024).

On layers sampled over the depth (``faithfulness.layers``), the trained baseline gets only that layer converted at
``faithfulness.ratio`` and is retrained ``faithfulness.epochs`` epochs; an unconverted control is retrained the same
way (same seed, same batches), so

    real_drop(S) = 100 * (acc(retrain(baseline)) - acc(retrain(convert(baseline, S))))

is the conversion's cost after real training. Faithfulness: Spearman rank correlation of proxy and real drops.
Additivity: pair drops against the sum of single drops (what the selection's knapsack assumes). Rows go to a resume
log keyed by the params these checks read, the content of the baseline, the splits and the sweep's rows, and the
code closure of this module (``basisconv.experiment.faithfulness`` through ``basisconv.pipeline.stages.sensitivity``).
"""
from __future__ import annotations

from dataclasses import asdict

import pandas as pd

from basisconv.experiment import faithfulness as fa
from basisconv.experiment.data import stratified_subset
from basisconv.experiment.io import read_json, write_frame, write_json, write_metrics
from basisconv.pipeline.keys import key_of
from basisconv.pipeline.layout import STAGES
from basisconv.pipeline.resume import resume_log
from basisconv.pipeline.stages import common
from basisconv.pipeline.stages.sensitivity import measured_params, proxy_config, sweep_val, trained_baseline

L = STAGES["faithfulness"]


def _row_key(r: dict) -> tuple:
    return r["method"], tuple(r["layers"])


def plan(P: dict) -> dict:
    """Layers, pairs and retraining schedule (``P`` is valid: ``faithfulness.ratio`` is a swept ratio, checked by
    ``basisconv.pipeline.validate``)."""
    F = P["faithfulness"]
    sens = pd.read_csv(L["sensitivity_rows"])
    # the final baseline's sweep: the model these checks retrain from
    sens_rows = (sens[sens.model == "final"] if "model" in sens else sens).to_dict("records")
    layers = fa.sample_layers(list(dict.fromkeys(r["layer"] for r in sens_rows)), F["layers"])
    return {"sens_rows": sens_rows, "layers": layers, "pairs": fa.sample_pairs(layers, F["pairs"], seed=F["seed"]),
            "cfg": fa.retrain_config(common.resolved_train(P["train"]), epochs=F["epochs"], lr=F["lr"], seed=F["seed"])}


def retrain_data(train_data: tuple, F: dict) -> tuple:
    """The training images the retraining runs see: a stratified ``faithfulness.train_subset`` of them (seeded by
    ``faithfulness.seed``), so that retraining every candidate layer fits a budget on the full training split.
    The proxy's batches still come from the whole split, as the sweep's do."""
    images, labels = train_data
    keep = stratified_subset(labels, F["train_subset"], F["seed"])
    return images[keep], labels[keep]


def measure(P: dict, pl: dict, D: dict, device, key: str, *, shard=(0, 1), progress=True) -> list[dict]:
    """Run (this worker's part of) the measurements into the resume log of ``key``; returns all rows so far."""
    S, F = P["sensitivity"], P["faithfulness"]
    rows, keep_row = resume_log(L["runs"], key, shard, _row_key, kept_dir=common.kept_dir("faithfulness", P))
    # proxy pairs are scored on the sweep's own images and settings, so they compare with its single-layer rows
    fa.measure(trained_baseline(P), pl["layers"], pl["pairs"], F["ratio"], D["train"], D["val"], pl["cfg"],
               retrain_data=retrain_data(D["train"], F),
               proxies=S["proxies"], proxy_val_data=sweep_val(S, D), proxy_cfg=proxy_config(P),
               proxy_batch_size=S["batch_size"], device=device,
               done={_row_key(r) for r in rows}, on_row=keep_row, progress=progress, shard=shard)
    return rows


def run(P: dict, progress=True) -> dict:
    """Measure and summarise. Returns ``{"table", "additivity", "summary", "layers", "pairs"}``."""
    S, F = P["sensitivity"], P["faithfulness"]
    device = common.setup(P["train"])
    pl = plan(P)  # refuses a ratio the sweep did not measure, before any training
    D, meta = common.load_splits()
    inputs = common.inputs("faithfulness", {  # workers only split the jobs: not part of the rows' key
        "sensitivity": measured_params(S), "faithfulness": {k: v for k, v in F.items() if k != "workers"},
        "model": P["model"], "retrain": asdict(pl["cfg"]),
        "seed": P["train"]["seeds"][0]}, sections=("sensitivity", "faithfulness", "model", "retrain", "seed"),
        files=[L["model"], L["prepared"], L["sensitivity_rows"]])
    key = key_of(inputs)
    if F["workers"] > 1 and not common.under_torchrun():
        common.launch("faithfulness", F["workers"], P)
    shard = common.worker_shard()
    rows = measure(P, pl, D, device, key, shard=shard, progress=progress)
    if common.under_torchrun():
        return {"rows": rows}
    table, additivity, summary = fa.summarise(rows, pl["sens_rows"], F["ratio"], pl["layers"], pl["pairs"],
                                              S["proxies"], confidence=S["confidence"])
    baseline = read_json(L["baseline"])
    summary.update(data=meta["label"], profile=P["profile"], params_resolved=P, retrain_epochs=F["epochs"],
                   baseline_train_seconds=baseline["train_time"])
    table["data"] = additivity["data"] = meta["label"]
    write_frame(L["layers"], table)
    write_frame(L["pairs"], additivity)
    write_json(L["summary"], summary)
    # the Spearman correlation of the proxy the selection uses (the others are in the summary)
    write_metrics(L["metrics"], {"rho": summary.get(f"spearman_{S['selection_proxy']}")})
    common.write_provenance("faithfulness", {"key": key, **inputs})
    return {"table": table, "additivity": additivity, "summary": summary, "layers": pl["layers"],
            "pairs": pl["pairs"], "data": meta}
