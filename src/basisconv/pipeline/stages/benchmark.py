"""Stage ``benchmark``: the paper's speed claim, measured honestly (arXiv 2408.06024, forward/backward cost).

Per layer: every conv of the model at each ``benchmark.ratios`` entry, forward and forward+backward, dense
``nn.Conv2d`` against ``BasisConv2d`` (reduced and full coefficient matrices) and the folded conv, next to the
theoretical speedup (the MAC ratio ``C_out C_in k^2 / (r C_in k^2 + (C_out - r) r)``). Whole models: training step
and inference of the baseline, all-layers basis, the selected layers fresh and as the switch schedule trains them
(QR basis), and with execution forms tuned by measurement; then data-loader throughput and trainer overhead; the peers at the same parameter budget (``basisconv.perf.peers``:
tensorly-torch's Tucker conv, the full-coefficient factorization) on every distinct shape; and the deployment path
(``basisconv.perf.export``: ONNX export of the basis and folded forms, checked and timed in onnxruntime). ``torch.utils.benchmark`` with warm-up excluded and device sync;
hardware and versions go into every row. The timings are kept under a key (``timing_inputs``: the params they read, the
selection and splits, this module's computation and the machine), like a training: re-running the stage with the same
key re-times nothing, so verdicts drawn from them (at rendering: ``basisconv.perf.analysis`` holds the targets) change
only when a timing input does.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import torch

from basisconv.perf import bench, export, peers
from basisconv.experiment.io import read_json, write_frame, write_json, write_metrics
from basisconv.pipeline.layout import STAGES
from basisconv.experiment.data import CLASSES
from basisconv.experiment.models import INPUT_SHAPE, build_model
from basisconv.experiment.precision import precision_name
from basisconv.experiment.provenance import hardware_info
from basisconv.core.surgery import convert, fold
from basisconv.pipeline.keys import key_of
from basisconv.pipeline.plan import plan, trained_twice
from basisconv.pipeline.stages import common
from basisconv.pipeline.variants import RunName

L = STAGES["benchmark"]
# a whole-model row's numbers in the summary: the speedup with its interval over the interleaved timing rounds
# (what the speed claims are decided on, ``pipeline.claims.speed_claims``), and each round's time with the MACs
# (what the schedules' cost is decided on, ``pipeline.claims.cost_claims``)
MODEL_SUMMARY_KEYS = ("median_ms", "measured_speedup", "theoretical_speedup", "images_per_s", "repeats",
                      "speedup_geomean", "speedup_low", "speedup_high", "round_ms", "macs")


def precisions(P: dict) -> list[str]:
    """fp32 (the paper's cost model) and, when it differs, the precision training runs in (``train.amp`` resolved
    for the device): the targets are held in the latter, the dtype the claim is made for."""
    trained = precision_name(common.resolved_train(P["train"])["amp"])
    return list(dict.fromkeys(["fp32", trained]))


def timed_runs(P: dict, sel: dict) -> list[tuple]:
    """The basis runs whose models the benchmark times: every distinct model of the basis stage's plan for the first
    seed (``plan.plan``; a run that is another run's model is timed once), ``(run name, schedule, layers, ratio)``."""
    amp = common.resolved_train(P["train"])["amp"]
    entries = plan(P["basis"], sel, P["train"]["seeds"][0], amp=amp)
    twins = trained_twice(entries)
    return [e for e in entries if e[2] is not None and e[0] not in twins]


def main_runs(runs: list[tuple]) -> list[str]:
    """Of ``timed_runs``, the all-layers and selected runs at the main point: timed in every precision (the others,
    the fronts and comparison subsets, in the training precision, for the figures of accuracy against time)."""
    return [name for name, *_ in runs if RunName.parse(name).variant in ("all_layers", "selected")
            and not RunName.parse(name).point]


def models_to_time(P: dict, net, sel: dict, device, K: dict, precision: str = "fp32") -> tuple[dict, dict, list]:
    """``(models, modes, forms)``: the whole models timed (the baseline, then every ``timed_runs`` model as its
    schedule trains it: a scratch run's basis is the leading channels, a switch or late run's the filters QR picks
    among its own), which modes each, and the execution forms tuned in ``precision`` for the selection of the first
    training schedule (``selected_tuned``: fastest implementation per layer for training, folded where faster at
    inference)."""
    B = P["basis"]
    models, modes, forms = {"baseline": net}, {}, []
    for name, schedule, layers, ratio in timed_runs(P, sel):
        models[name] = convert(net, layers, ratio=ratio, coeff=B["coeff"],
                               init="random" if schedule == "scratch" else "qr")
    tuned_from = next((n for n in main_runs(timed_runs(P, sel)) if RunName.parse(n).variant == "selected"
                       and RunName.parse(n).schedule != "scratch"), None)
    if tuned_from is not None:
        tuned, inference, forms = bench.tune_forms(models[tuned_from], batch_size=K["model_batch_size"],
                                                   input_shape=INPUT_SHAPE, device=device,
                                                   memory_format=K["memory_formats"][0],
                                                   min_run_time=K["min_run_time"], precision=precision)
        models["selected_tuned"], models["selected_tuned_inference"] = tuned, inference
        modes = {"selected_tuned": ("train_step",), "selected_tuned_inference": ("inference",)}
    return models, modes, forms


def search_jobs(P: dict, net, sel: dict, D: dict, device) -> dict:
    """``{"proxy_job:<layer>": fn}``: one job of the search each, as the method runs it: the layer converted at the
    sweep's first ratio and scored by the selection proxy alone (``core.sensitivity.proxy_eval``; the sweep's other
    proxies are this package's check of the proxy, not the search), on the sweep's batch size and on the evaluation
    images the search needs: the resolution subset where it selects the same layers as all of them
    (``selection["resolution"]``), else all. Timed at the first, middle and last candidate layer (a job's cost
    grows with the depth a fine-tune step backpropagates through), in the rounds of the training steps, so the
    search's cost against a training is decided under the same drift (``basisconv.pipeline.claims``)."""
    from basisconv.core.sensitivity import proxy_eval
    from basisconv.experiment import search
    from basisconv.pipeline.stages.sensitivity import proxy_config, resolution_subset, sweep_val
    S = P["sensitivity"]
    cfg, layers = proxy_config(P), sel["candidates"]
    batches = search.train_batches(D["train"], S["batch_size"], seed=cfg.seed, device=device)
    val = sweep_val(S, D)
    res, sub = sel.get("resolution"), resolution_subset(S, val)
    if res and res.get("same_selection") and sub is not None:
        val = (val[0][sub], val[1][sub])
    evaluate = search.correctness(val, device=device, amp=cfg.amp)
    model = net.to(device).eval()

    def job(layer):
        return lambda: proxy_eval(model, [layer], S["ratios"][0], S["selection_proxy"], batches, evaluate, cfg)
    picked = list(dict.fromkeys([layers[0], layers[len(layers) // 2], layers[-1]]))
    return {f"proxy_job:{layer}": job(layer) for layer in picked}


def _search_images(P: dict, sel: dict, D: dict) -> int:
    """The evaluation images of the timed search jobs (``search_jobs``)."""
    from basisconv.pipeline.stages.sensitivity import resolution_subset, sweep_val
    val = sweep_val(P["sensitivity"], D)
    res, sub = sel.get("resolution"), resolution_subset(P["sensitivity"], val)
    return len(sub) if res and res.get("same_selection") and sub is not None else len(val[1])


def measure(P: dict, sel: dict, device, progress=True) -> dict:
    """Every timing of the stage, raw: per-layer rows, whole-model rows with their interleaved rounds
    (``round_ms``), the tuned forms, data loading, trainer overhead, the peers and ONNX (``bench``, ``peers``,
    ``export``), with the hardware. Nothing here is decided: speedup verdicts and targets are drawn from these rows
    when a page is rendered (``basisconv.perf.analysis``, ``basisconv.pipeline.claims``)."""
    K = P["benchmark"]
    torch.manual_seed(0)
    net = build_model(P["model"]["arch"], width=P["model"]["width"])  # timing does not depend on trained weights
    precs = precisions(P)
    trained = precs[-1]  # the precision training runs in: tuned forms and loader/trainer timings use it
    rows = bench.bench_layers(net, K["ratios"], input_shape=INPUT_SHAPE, batch_sizes=K["batch_sizes"],
                              memory_formats=K["memory_formats"], device=device, min_run_time=K["min_run_time"],
                              precisions=precs, progress=progress)
    models, modes, forms = models_to_time(P, net, sel, device, K, precision=trained)
    D, _ = common.load_splits()
    everywhere = {"baseline", *main_runs(timed_runs(P, sel))}  # the others only in the training precision
    mrows = [r for prec in precs for r in bench.bench_models(
        {n: m for n, m in models.items() if prec == trained or n in everywhere}, input_shape=INPUT_SHAPE,
        num_classes=len(CLASSES), batch_size=K["model_batch_size"], device=device,
        memory_format=K["memory_formats"][0], min_run_time=K["model_min_run_time"], modes=modes, precision=prec,
        repeats=K["model_repeats"], jobs=search_jobs(P, net, sel, D, device) if prec == trained else None)]
    # data loading alone and the trainer's overhead over a bare forward/backward/step loop
    fmt_cl = K["memory_formats"][0] == "channels_last"
    loader_t = bench.bench_loader(*D["train"], batch_size=K["model_batch_size"], device=device,
                                  channels_last=fmt_cl, min_run_time=K["min_run_time"])
    trainer_t = bench.bench_trainer_overhead(net, *D["train"], batch_size=K["model_batch_size"],
                                             steps=K["overhead_steps"], device=device, channels_last=fmt_cl,
                                             amp=trained == "bf16")
    # the peers at the basis layer's parameter budget, on every distinct 3x3 shape (fp32, and bf16 where native)
    peer_rows = peers.bench_peers(net, K["ratios"], input_shape=INPUT_SHAPE, batch_size=K["batch_sizes"][0],
                                  memory_format=K["memory_formats"][0], device=device,
                                  min_run_time=K["min_run_time"], peers=K["peers"],
                                  progress=progress) if K["peers"] else []
    # deployment: the model as trained (basis form) and folded, exported to ONNX, checked and timed in onnxruntime
    onnx_rows = []
    if K["onnx"]:
        deploy = {"baseline": net}
        sel_run = next((n for n in main_runs(timed_runs(P, sel)) if RunName.parse(n).variant == "selected"), None)
        if sel_run is not None:
            deploy.update(selected_basis=models[sel_run], selected_folded=fold(models[sel_run]))
        with tempfile.TemporaryDirectory() as tmp:
            onnx_rows = export.bench_onnx(deploy, tmp, input_shape=INPUT_SHAPE, batch_size=K["model_batch_size"],
                                          min_run_time=K["min_run_time"])
    return {"layers": rows, "models": mrows, "forms": forms, "loader": loader_t, "trainer": trainer_t,
            "peers": peer_rows, "onnx": onnx_rows, "precisions": precs, "precision": trained,
            "hardware": hardware_info(device),
            # what the renderer needs to turn step and job times into costs: the runs' layers, the sizes
            "model_layers": {n: {layer: float(ratio[layer] if isinstance(ratio, dict) else ratio) for layer in layers}
                             for n, _, layers, ratio in timed_runs(P, sel)},
            # a run that is an earlier run's model is timed once, under that name
            "timed_as": trained_twice(plan(P["basis"], sel, P["train"]["seeds"][0],
                                           amp=common.resolved_train(P["train"])["amp"])),
            "sweep_options": len(sel["candidates"]) * len(P["sensitivity"]["ratios"]),
            "search_images": _search_images(P, sel, D),
            "train_images": len(D["train"][1])}


# what a timing depends on besides the code: the machine (two machines of one CPU model differ about 2x) and torch
MACHINE_KEYS = ("device", "device_name", "threads", "torch", "machine")


def timing_inputs(P: dict, device) -> dict:
    """The key's parts: the params sections the timings read (not the profile's name), the content of the selection
    and the splits, the computation of this module's closure, and the machine (``MACHINE_KEYS``)."""
    sections = tuple(s for s in L.params if s != "profile")
    hw = hardware_info(device)
    return {**common.inputs("benchmark", P, sections=sections), "machine": {k: hw[k] for k in MACHINE_KEYS}}


def run(P: dict, progress=True) -> dict:
    """Time layers and models, or find this key's timings kept (``models/runs/benchmark/timings-<key>.json``: a
    prose or threshold edit re-times nothing); write the stage's tables and summary. Returns ``measure``'s dict with
    ``"models"``, ``"layers"``, ``"peer_rows"`` as DataFrames and ``"key"``."""
    K = P["benchmark"]
    device = common.setup(P["train"], threads=K["threads"])
    sel = read_json(L["selection"])
    inputs = timing_inputs(P, device)
    key = key_of(inputs)
    kept = Path(L["runs"]) / f"timings-{key}.json"
    if kept.is_file():
        t = read_json(kept)
        print(f"benchmark: timings of key {key} found ({t['hardware']['device_name']}), not re-timed")
    else:
        t = measure(P, sel, device, progress=progress)
        write_json(kept, t)  # the raw rounds: what every verdict about speed is drawn from
    write_frame(L["layers"], pd.DataFrame(t["layers"]))
    write_frame(L["forms"], pd.DataFrame(t["forms"], columns=None if t["forms"] else
                                         ["layer", "train_impl", "inference_form"]))
    write_frame(L["models"], pd.DataFrame(t["models"]))
    write_frame(L["peers"], pd.DataFrame(t["peers"], columns=None if t["peers"] else ["layer", "form"]))
    write_frame(L["onnx"], pd.DataFrame(t["onnx"], columns=None if t["onnx"] else ["model"]))
    trained = t["precision"]
    step = {r["model"]: r["measured_speedup"] for r in t["models"] if r["mode"] == "train_step"
            and r["precision"] == trained}
    # the measured train-step speedup of the selection as the pipeline trains it (tuned forms, else as trained)
    sel_run = next((n for n in step if "@" in n and RunName.parse(n).variant == "selected"
                    and not RunName.parse(n).point), None)
    write_metrics(L["metrics"], {"speedup": step.get("selected_tuned", step.get(sel_run))})
    by_prec = {prec: {f"{r['model']}.{r['mode']}": {k: r.get(k) for k in MODEL_SUMMARY_KEYS}
                      for r in t["models"] if r["precision"] == prec} for prec in t["precisions"]}
    write_json(L["summary"], {
        "key": key, "loader": t["loader"], "trainer": t["trainer"], "precision": trained, "profile": P["profile"],
        "hardware": t["hardware"], "peers": peers.summary(t["peers"]) if t["peers"] else [], "onnx": t["onnx"],
        "params_resolved": P, "models": by_prec[trained], "models_by_precision": by_prec,
        **{k: t[k] for k in ("model_layers", "sweep_options", "search_images", "train_images", "timed_as")}})
    common.write_provenance("benchmark", {"key": key, **inputs})
    return {**t, "key": key, "models": pd.DataFrame(t["models"]), "layers": pd.DataFrame(t["layers"]),
            "peer_rows": pd.DataFrame(t["peers"], columns=None if t["peers"] else ["layer", "form"])}
