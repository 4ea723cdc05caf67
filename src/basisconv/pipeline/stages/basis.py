"""Stage ``basis``: the paper's main comparison, basis-decomposed training (arXiv 2408.06024, Experiments).

Every run of the plan (``basisconv.pipeline.plan``) is trained for every seed of ``train.seeds``: the baseline (and
optionally ``baseline_fp32``, the same in fp32 when the others train under bf16 autocast), basis layers on **all**
candidate layers at ``basis.ratio`` (the naive use) and on the **selected** layers at their selected ratios, with
every schedule of ``basis.schedules``, and the comparison subsets of ``basis.comparisons`` matched to the selection's
savings (``random<k>``, a draw per seed; ``largest``; ``largest_macs``; ``spectral``: ranks from the baseline's
singular-value energy, ``basisconv.core.spectral``). Schedules (``basisconv.pipeline.variants.SCHEDULES``):
``scratch`` (basis layers from step 0), ``switch`` (the paper's skip schedule: ``basis.switch_epoch`` full-rank
epochs, then each chosen ``W`` is replaced by ``A W'`` initialised from its own filters) and ``late`` (the same after
``basis.late_epoch`` epochs: post-training conversion with a short fine-tune). A switch or late run starts from its
seed's baseline snapshot at its epoch. ``runs.csv`` gives every run's ``epochs`` and ``basis_epochs`` (those trained
with basis layers). Each run is content-addressed (``basisconv.pipeline.runs``): its key hashes its TrainConfig
(layers and ratios included), the model section, the content of ``data/prepared`` and this module's code closure.
"""
from __future__ import annotations

from dataclasses import replace

import pandas as pd
import torch

from basisconv.experiment.io import read_json, write_frame, write_json, write_metrics
from basisconv.pipeline.keys import digest
from basisconv.pipeline.layout import PREPARED, STAGES
from basisconv.experiment.models import build_model
from basisconv.experiment.train import snapshot_path
from basisconv.pipeline.runs import run_files, run_training
from basisconv.pipeline.stages import common, training
from basisconv.pipeline.plan import model_of, plan
from basisconv.pipeline.variants import run_name, snapshot_epochs, start_epoch

L = STAGES["basis"]


def train_runs(P: dict, sel: dict, D: dict, meta: dict, run_inputs: str, device, baseline: dict,
               progress=True, on_run=None) -> tuple[list[dict], list[dict]]:
    """Train the plan (``basisconv.pipeline.plan``) of every seed (the first seed's baseline is the baseline stage's
    run). Returns ``(runs, histories)``: one row per run, and one per run and epoch (its history, with ``variant``
    and ``seed``).

    A switch or late run continues from its seed's baseline at its switch epoch (``runs.run_training(start=...)``):
    up to there the two are the same computation, so those epochs are trained once per seed, not once per variant.
    A run that comes out as an earlier run's model (``plan.trained_twice``: the same layers at the same ratios with
    the same schedule) is trained once: its row is the earlier run's under its own name, with ``same_as`` naming
    it."""
    B, runs, histories = P["basis"], [], []
    amp = common.resolved_train(P["train"])["amp"]  # the precision every run but baseline_fp32 trains in
    E, keep = P["train"]["epochs"], snapshot_epochs(B)

    def baseline_run(seed: int, force: bool = False) -> dict:
        torch.manual_seed(seed)
        net = build_model(P["model"]["arch"], width=P["model"]["width"])
        return run_training(f"baseline_s{seed}", net, training.train_config(P["train"], seed=seed), D,
                            run_dir=L["runs"], model_spec=P["model"], data_meta=meta, inputs=run_inputs,
                            device=device, progress=progress, snapshot_epochs=keep, kept_dir=common.kept_dir(
                                "basis", P), force=force)

    def remake(seed: int, found: dict):
        """A baseline found in the kept summaries has no snapshots here: train it again (the same computation) for
        them, once, when a run that starts from one must train; it must come out as the kept run did."""
        done = []

        def ensure():
            if not done:
                again = baseline_run(seed, force=True)
                if (again["test_acc"], again["val_acc"]) != (found["test_acc"], found["val_acc"]):
                    raise RuntimeError(f"baseline seed {seed} trained again for its snapshots gives test/val accuracy "
                                       f"{again['test_acc']}/{again['val_acc']}, its kept run "
                                       f"{found['test_acc']}/{found['val_acc']}: not the same computation")
                done.append(True)
        return ensure

    for seed in P["train"]["seeds"]:
        starts, trained = {}, {}  # this seed's baseline snapshots by epoch; the models trained, by identity
        for name, schedule, layers, ratio in plan(B, sel, seed, amp=amp):
            e = 0 if layers is None else start_epoch(B, schedule)  # dense epochs before the basis layers
            same_as = ""
            if name == "baseline" and seed == P["train"]["seeds"][0]:
                # the baseline stage's summary is read under torchrun as well: the first seed's switch runs start
                # from its snapshots, so their keys must be the ones the main process looks up afterwards
                m = dict(baseline, name="baseline")  # same config as the baseline stage: not trained twice
                starts = {k: baseline_start(STAGES["baseline"]["runs"], f"baseline_s{seed}", m["key"], k)
                          for k in keep}  # the baseline stage trained it here (it keeps its weights)
            elif name == "baseline":
                m = baseline_run(seed)
                starts = {k: {**baseline_start(L["runs"], f"{name}_s{seed}", m["key"], k), "ensure": remake(seed, m)}
                          for k in keep}
            elif layers is not None and (schedule, model_of(layers, ratio)) in trained:
                same_as, m = trained[schedule, model_of(layers, ratio)]
            else:
                basis_kw = {} if layers is None else dict(
                    basis_layers=list(layers), basis_ratio=ratio, basis_coeff=B["coeff"], basis_init=B["init"],
                    switch_epoch=e)
                cfg = training.train_config(P["train"], seed=seed, **basis_kw)
                if name == "baseline_fp32":
                    cfg = replace(cfg, amp=False)
                torch.manual_seed(seed)
                net = build_model(P["model"]["arch"], width=P["model"]["width"])
                m = run_training(f"{name}_s{seed}", net, cfg, D, run_dir=L["runs"], model_spec=P["model"],
                                 data_meta=meta, inputs=run_inputs, device=device, progress=progress,
                                 start=starts.get(e) if layers is not None and e > 0 else None,
                                 kept_dir=common.kept_dir("basis", P))
                if layers is not None:
                    trained[schedule, model_of(layers, ratio)] = (name, m)
            row = {"variant": name, "seed": seed, "schedule": schedule, "key": m["key"], "test_acc": m["test_acc"],
                   "val_acc": m["val_acc"], "params": m["params"], "macs": m["macs"], "epochs": E,
                   "basis_epochs": 0 if layers is None else E - e, "same_as": same_as,
                   "epoch_time_mean": m["epoch_time_mean"], "train_time": m["train_time"],
                   "basis_epoch_time": late_epoch_time(m["epoch_times"], e if layers is not None
                                                       else B["switch_epoch"]),
                   "amp": amp and name != "baseline_fp32", "data": meta["label"],
                   "machine": m.get("hardware", {}).get("machine")}  # timings pair only runs of one machine
            runs.append(row)
            histories += [{"variant": name, "seed": seed, **h} for h in m["history"]]
            if on_run is not None:
                on_run(row)
    return runs, histories


def late_epoch_time(epoch_times: list[float], switch_epoch: int) -> float:
    """Mean time of the epochs from ``switch_epoch`` on: the epochs in which a switch run trains its basis layers,
    the same epochs for every variant (NaN if the run has none), so a baseline and a switch run of one seed compare
    the same stretch of the schedule. A switch run's earlier epochs are its baseline's (started from its snapshot)."""
    late = epoch_times[switch_epoch:]
    return sum(late) / len(late) if late else float("nan")


def baseline_start(run_dir, name: str, key: str, epoch: int) -> dict:
    """``run_training``'s ``start`` for the switch runs of a baseline run: its key (and the epoch) for their keys,
    and the snapshot file it keeps at the switch epoch (``train(snapshot_epochs=...)``)."""
    return {"key": f"{key}@{epoch}", "file": snapshot_path(run_files(run_dir, name, key)["ckpt"], epoch)}


def main_table(runs: pd.DataFrame, label: str) -> pd.DataFrame:
    """Mean and sample std (NaN with one seed) over seeds per variant, with deltas and compression against the
    baseline."""
    g = runs.groupby("variant", sort=False)
    base = runs[runs.variant == "baseline"]
    base_acc = base.test_acc.mean() if len(base) else float("nan")
    base_params = base.params.iloc[0] if len(base) else float("nan")
    table = pd.DataFrame({
        "test_acc_mean": g.test_acc.mean() * 100, "test_acc_std": g.test_acc.std(ddof=1) * 100,
        "seeds": g.seed.count(), "delta_vs_baseline": (g.test_acc.mean() - base_acc) * 100,
        "params": g.params.first(), "compression": base_params / g.params.first(), "macs": g.macs.first(),
        "epoch_time_s": g.epoch_time_mean.mean(), "train_time_s": g.train_time.mean()}).reset_index()
    table["data"] = label
    return table


def headline(table: pd.DataFrame, B: dict) -> dict:
    """The basis stage's DVC metrics: the selection's mean test accuracy (%), its difference to the baseline (points)
    and its compression, under the first training schedule it trains with (switch, else scratch, else late)."""
    t = table.set_index("variant")
    schedule = next((s for s in ("switch", "scratch", "late") if s in B["schedules"]), "switch")
    v = run_name("selected", schedule, B=B)
    if v not in t.index:
        return {"sel_acc": None, "sel_delta": None, "compression": None}
    return {"sel_acc": float(t.loc[v, "test_acc_mean"]), "sel_delta": float(t.loc[v, "delta_vs_baseline"]),
            "compression": float(t.loc[v, "compression"])}


def run(P: dict, progress=True, on_run=None) -> dict:
    """Plan, train (or find) every run, aggregate. Returns ``{"runs", "table", "twins", "data"}`` (``twins``: run
    names that are an earlier run's model, ``{name: earlier name}``)."""
    device = common.setup(P["train"])
    sel = read_json(L["selection"])
    amp = common.resolved_train(P["train"])["amp"]
    for seed in P["train"]["seeds"]:  # refuses a selection of other basis params before any training
        plan(P["basis"], sel, seed, amp=amp)
    if P["train"]["processes"] > 1 and not common.under_torchrun():
        common.launch("basis", P["train"]["processes"], P)  # data-parallel; the runs are then found finished
    D, meta = common.load_splits()
    inputs = common.inputs("basis", P)
    baseline = read_json(L["baseline"])
    # data content, code and the machine's numerics: what every run shares
    run_inputs = digest(inputs["inputs"][PREPARED], inputs["code"], inputs["numerics"])
    runs, histories = train_runs(P, sel, D, meta, run_inputs, device, baseline, progress=progress, on_run=on_run)
    if common.under_torchrun():
        return {"runs": runs}
    runs = pd.DataFrame(runs)
    write_frame(L["runs_table"], runs)
    write_frame(L["histories"], pd.DataFrame(histories))  # what the learning-curve figure draws
    table = main_table(runs, meta["label"])
    write_frame(L["main_table"], table)
    write_metrics(L["metrics"], headline(table, P["basis"]))
    write_json(L["summary"], {"data": meta["label"], "profile": P["profile"], "params_resolved": P, "variants": {
        r.variant: {k: (None if pd.isna(v) else v) for k, v in r._asdict().items() if k not in ("Index", "variant")}
        for r in table.itertuples()}})
    common.write_provenance("basis", {**inputs, "run_inputs": run_inputs})
    twins = {r.variant: r.same_as for r in runs.itertuples() if isinstance(r.same_as, str) and r.same_as}
    return {"runs": runs, "table": table, "twins": twins, "data": meta}
