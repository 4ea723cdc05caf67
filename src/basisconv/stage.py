"""The edge between ``params.yaml`` and the library, used by the pipeline notebooks (arXiv 2408.06024 replication).

Each notebook's parameters cell receives ``params.yaml`` from papermill; ``stage.params`` checks every section it
reads against ``profiles/paper.yaml`` (unknown keys are refused, missing ones take the paper's value) before any
compute. Then the setup shared by all stages (threads, device, tqdm inside papermill), and each stage's work as
one function of the checked params (``baseline_run``, ``sensitivity_sweep``, ``faithfulness_measure``,
``basis_runs``), called by the notebooks and, for scale-out, by ``python -m basisconv.launch`` under torchrun, so
both produce the same run and resume files under ``models/runs/``.
"""
from __future__ import annotations

from pathlib import Path

import torch
import yaml

from .data import load_prepared
from .io import read_json
from .params import check_section
from .train import TrainConfig, resolve_device

SCHEMA = Path("profiles") / "paper.yaml"


def params(**sections) -> dict:
    """``{name: checked section}`` for each ``name=given_dict`` (papermill-injected); refuses unknown keys."""
    schema = yaml.safe_load(SCHEMA.read_text())
    out = {}
    for name, given in sections.items():
        if name not in schema:
            raise ValueError(f"unknown params section {name!r}; valid sections: {', '.join(schema)}")
        out[name] = check_section(name, given or {}, schema[name]) if isinstance(schema[name], dict) else given
    return out


def setup(train_params: dict) -> torch.device:
    """Threads and device from the ``train`` section; returns the device."""
    if train_params.get("threads"):
        torch.set_num_threads(int(train_params["threads"]))
    return resolve_device(train_params.get("device", "auto"))


def progress(interval: float = 30.0) -> dict:
    """tqdm settings for notebooks: under papermill every refresh becomes a stored output, so refresh rarely."""
    return {"mininterval": interval}


def load_splits(prepared) -> tuple[dict, dict]:
    """The three prepared splits and the data metadata (whose ``label`` goes into every result)."""
    return {s: load_prepared(prepared, s) for s in ("train", "val", "test")}, read_json(Path(prepared) / "meta.json")


def train_config(train: dict, *, seed: int, **basis) -> TrainConfig:
    """A ``TrainConfig`` from the ``train`` section (pipeline-only keys dropped) plus basis options."""
    keys = set(TrainConfig.__dataclass_fields__)
    cfg = {k: v for k, v in train.items() if k in keys}
    return TrainConfig(**cfg, seed=seed, **basis)


# --- the runs of each stage, shared by the notebooks and `python -m basisconv.launch` (torchrun) -----------------

VARIANTS = ("baseline", "all_layers", "selected", "random", "largest")
BASIS_SCHEDULES = ("scratch", "switch")


def baseline_run(P: dict, D: dict, meta: dict, device, progress=True) -> dict:
    """The baseline stage's training (seed ``train.seeds[0]``): the model the sensitivity search starts from."""
    from .models import build_model
    from .runs import run_training
    seed = P["train"]["seeds"][0]
    cfg = train_config(P["train"], seed=seed)
    torch.manual_seed(seed)
    net = build_model(P["model"]["arch"], width=P["model"]["width"])
    return run_training(f"baseline_s{seed}", net, cfg, D, run_dir="models/runs/baseline", model_spec=P["model"],
                        data_meta=meta, device=device, progress=progress, save_model="models/baseline.pt")


def basis_plan(B: dict, sel: dict) -> list[tuple]:
    """``(variant, schedule, layers, ratio)`` for every basis-stage variant, validated before any training."""
    for v in B["variants"]:
        if v not in VARIANTS:
            raise ValueError(f"unknown basis.variants entry {v!r}; valid choices: {', '.join(VARIANTS)}")
    for s in list(B["schedules"]) + [B["comparison_schedule"]]:
        if s not in BASIS_SCHEDULES:
            raise ValueError(f"unknown schedule {s!r}; valid choices: {', '.join(BASIS_SCHEDULES)}")
    plan = [("baseline", "-", None, None)] if "baseline" in B["variants"] else []
    for v in ("all_layers", "selected"):
        if v not in B["variants"] or (v == "selected" and not sel["layers"]):
            continue  # an empty selection (no layer fits the loss budget) has nothing to train
        layers, ratio = (sel["candidates"], B["ratio"]) if v == "all_layers" else (sel["layers"], sel["ratios"])
        plan += [(v, s, layers, ratio) for s in B["schedules"]]
    for name, c in sel["comparisons"].items():
        if name.rstrip("0123456789") in B["variants"]:
            plan.append((name, B["comparison_schedule"], c["layers"], c["ratios"]))
    return plan


def basis_runs(P: dict, plan: list[tuple], D: dict, meta: dict, device, baseline: dict | None, progress=True,
               on_run=None) -> list[dict]:
    """Train every ``plan`` entry for every seed (the baseline of the first seed is the baseline stage's run)."""
    from .models import build_model
    from .runs import run_training
    B, runs = P["basis"], []
    for seed in P["train"]["seeds"]:
        for variant, schedule, layers, ratio in plan:
            name = variant if schedule == "-" else f"{variant}@{schedule}"
            if variant == "baseline" and seed == P["train"]["seeds"][0]:
                if baseline is None:
                    continue  # under torchrun only the runs to train are wanted
                m = dict(baseline, name="baseline")  # same config as the baseline stage: not trained twice
            else:
                basis_kw = {} if layers is None else dict(
                    basis_layers=list(layers), basis_ratio=ratio, basis_coeff=B["coeff"], basis_init=B["init"],
                    switch_epoch=B["switch_epoch"] if schedule == "switch" else 0)
                cfg = train_config(P["train"], seed=seed, **basis_kw)
                torch.manual_seed(seed)
                net = build_model(P["model"]["arch"], width=P["model"]["width"])
                m = run_training(f"{name}_s{seed}", net, cfg, D, run_dir="models/runs/basis", model_spec=P["model"],
                                 data_meta=meta, device=device, progress=progress)
            row = {"variant": name, "seed": seed, "test_acc": m["test_acc"], "val_acc": m["val_acc"],
                   "params": m["params"], "macs": m["macs"], "epoch_time_mean": m["epoch_time_mean"],
                   "train_time": m["train_time"], "data": meta["label"]}
            runs.append(row)
            if on_run is not None:
                on_run(row)
    return runs


def _trained_baseline(P: dict):
    from .models import build_model
    net = build_model(P["model"]["arch"], width=P["model"]["width"])
    net.load_state_dict(torch.load("models/baseline.pt", weights_only=True))
    return net


def _sweep_val(P: dict, D: dict):
    """The sweep's validation images: the val split, or its stratified ``sensitivity.eval_size`` subset."""
    from .data import stratified_subset
    val, n = D["val"], P["sensitivity"]["eval_size"]
    if n:
        keep = stratified_subset(val[1], n, 0)
        val = (val[0][keep], val[1][keep])
    return val


def _config_key(*parts) -> str:
    """Short hash naming the resume files of one configuration (other params never reuse its rows)."""
    import hashlib
    import json
    return hashlib.sha256(json.dumps(list(parts), sort_keys=True, default=str).encode()).hexdigest()[:12]


def sensitivity_setup(P: dict, D: dict) -> tuple:
    """The baseline model, the candidate layers and the validation images of the sweep."""
    from .sensitivity import candidate_layers
    S = P["sensitivity"]
    net = _trained_baseline(P)
    return net, candidate_layers(net, S["include"], S["exclude"], S["kernel_sizes"]), _sweep_val(P, D)


def sensitivity_sweep(P: dict, net, layers: list[str], D: dict, val, meta: dict, device, *, shard=(0, 1),
                      progress=True) -> list[dict]:
    """Run (this worker's part of) the sweep, appending each row to a resume file; returns every row measured so far.

    Rows live in ``models/runs/sensitivity/partial-<key>[.<k>of<n>].jsonl``, one file per worker so workers never
    write the same file; ``key`` hashes the configuration, so rows of other params are never reused. Rows of all
    workers count as done, and the result is sorted the same way whoever measured what.
    """
    from .bench import make_layer_timer
    from .sensitivity import layer_sensitivity
    S = P["sensitivity"]
    key = _config_key(S, P["model"], meta, "models/baseline.pt", Path("models/baseline.pt").stat().st_size)
    rows, keep_row = resume_log(Path("models/runs/sensitivity"), key, shard, _sweep_key)
    timer = make_layer_timer(S["batch_size"], device=device, min_run_time=0.1)
    cache = {}

    def time_saved(conv, basis_layer, rec):  # measured once per (layer, rank), shared by both proxies
        ck = (rec.name, basis_layer.rank)
        if ck not in cache:
            cache[ck] = timer(conv, basis_layer, rec)
        return cache[ck]

    layer_sensitivity(net, layers, S["ratios"], S["proxies"], D["train"], val, init=S["init"], coeff=S["coeff"],
                      bn_batches=S["bn_batches"], batch_size=S["batch_size"], finetune_steps=S["finetune_steps"],
                      finetune_lr=S["finetune_lr"], confidence=S["confidence"], device=device,
                      seed=P["train"]["seeds"][0], time_layer=time_saved,
                      done={_sweep_key(r) for r in rows}, on_row=keep_row,
                      progress=progress, shard=shard)
    return sort_rows(rows, layers)


def _sweep_key(r: dict) -> tuple:
    return r["layer"], r["ratio"], r["proxy"]


def merge_rows(files, layers: list[str]) -> list[dict]:
    """Sweep rows of every resume file, one per (layer, ratio, proxy) (first file in name order wins), sorted."""
    return sort_rows(read_logs(files, _sweep_key), layers)


def read_logs(files, row_key) -> list[dict]:
    """Rows of JSON-lines resume files, one per ``row_key(row)``; the first file in name order wins."""
    import json
    seen, rows = set(), []
    for f in sorted(files):
        for line in Path(f).read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue  # blank, or the last line of a killed worker cut short: that job is measured again
            if row_key(r) not in seen:
                seen.add(row_key(r))
                rows.append(r)
    return rows


def resume_log(run_dir: Path, key: str, shard, row_key) -> tuple[list[dict], callable]:
    """``(rows so far of every worker, append)`` for a resumable measurement of configuration ``key``.

    One file per worker (``partial-<key>.jsonl``, or ``partial-<key>.<k>of<n>.jsonl`` for worker k of n), so
    workers never write the same file; ``append(row)`` adds a row to this worker's file and to ``rows``.
    """
    import json
    k, n = shard
    path = Path(run_dir) / (f"partial-{key}.jsonl" if n == 1 else f"partial-{key}.{k}of{n}.jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = read_logs(Path(run_dir).glob(f"partial-{key}*.jsonl"), row_key)

    def append(row):
        rows.append(row)
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")
    return rows, append


def sort_rows(rows: list[dict], layers: list[str]) -> list[dict]:
    """Deterministic order: proxy, then layer in model order, then ratio."""
    pos = {n: i for i, n in enumerate(layers)}
    return sorted(rows, key=lambda r: (r["proxy"], pos.get(r["layer"], len(pos)), r["ratio"]))


def launch(stage_name: str, processes: int, params_file: str = "params.yaml") -> None:
    """Run a stage's trainings under ``torchrun --standalone`` with ``processes`` workers on this machine.

    The notebook then finds the runs finished (same keys) and only assembles the results.
    """
    import subprocess
    import sys
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
           "-m", "basisconv.launch", stage_name, "--params", params_file]
    subprocess.run(cmd, check=True)


def faithfulness_setup(P: dict, D: dict) -> dict:
    """Everything the faithfulness checks need, validated: model, sampled layers and pairs, schedules, images."""
    import pandas as pd
    from . import faithfulness as fa
    S, F = P["sensitivity"], P["faithfulness"]
    if F["ratio"] not in S["ratios"]:
        raise ValueError(f"faithfulness.ratio={F['ratio']!r} was not swept; valid choices (sensitivity.ratios): "
                         f"{S['ratios']}")
    sens_rows = pd.read_csv("results/sensitivity.csv").to_dict("records")
    layers = fa.sample_layers(list(dict.fromkeys(r["layer"] for r in sens_rows)), F["layers"])
    pairs = fa.sample_pairs(layers, F["pairs"], seed=F["seed"])
    # proxy pairs are scored on the sweep's own images, so they compare with its single-layer rows
    return {"net": _trained_baseline(P), "sens_rows": sens_rows, "layers": layers, "pairs": pairs,
            "proxy_val": _sweep_val(P, D),
            "cfg": fa.retrain_config(P["train"], epochs=F["epochs"], lr=F["lr"], seed=F["seed"])}


def faithfulness_measure(P: dict, setup: dict, D: dict, meta: dict, device, *, shard=(0, 1),
                         progress=True) -> list[dict]:
    """Run (this worker's part of) the faithfulness measurements with resume files; returns all rows so far."""
    from . import faithfulness as fa
    S, F = P["sensitivity"], P["faithfulness"]
    key = _config_key(S, F, P["train"], P["model"], meta, Path("models/baseline.pt").stat().st_size,
                      setup["layers"], setup["pairs"])
    rows, keep_row = resume_log(Path("models/runs/faithfulness"), key, shard,
                                lambda r: (r["method"], tuple(r["layers"])))
    fa.measure(setup["net"], setup["layers"], setup["pairs"], F["ratio"], D["train"], D["val"], setup["cfg"],
               proxies=S["proxies"], proxy_val_data=setup["proxy_val"],
               proxy_kwargs=dict(bn_batches=S["bn_batches"], batch_size=S["batch_size"],
                                 finetune_steps=S["finetune_steps"], finetune_lr=S["finetune_lr"],
                                 seed=P["train"]["seeds"][0]),
               init=S["init"], coeff=S["coeff"], device=device, done={(r["method"], tuple(r["layers"])) for r in rows},
               on_row=keep_row, progress=progress, shard=shard)
    return rows
