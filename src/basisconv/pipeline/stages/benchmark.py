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
from basisconv.pipeline.stages import common

L = STAGES["benchmark"]
# a whole-model row's numbers in the summary: the speedup with its interval over the interleaved timing rounds
# (what the speed claims are decided on, ``pipeline.claims.speed_claims``), and each round's time with the MACs
# (what the schedules' cost is decided on, ``pipeline.claims.schedule_cost_claim``)
MODEL_SUMMARY_KEYS = ("median_ms", "measured_speedup", "theoretical_speedup", "images_per_s", "repeats",
                      "speedup_geomean", "speedup_low", "speedup_high", "round_ms", "macs")


def precisions(P: dict) -> list[str]:
    """fp32 (the paper's cost model) and, when it differs, the precision training runs in (``train.amp`` resolved
    for the device): the targets are held in the latter, the dtype the claim is made for."""
    trained = precision_name(common.resolved_train(P["train"])["amp"])
    return list(dict.fromkeys(["fp32", trained]))


def models_to_time(P: dict, net, sel: dict, device, K: dict, precision: str = "fp32") -> tuple[dict, dict, list]:
    """``(models, modes, forms)``: the whole models timed, which modes each, and the execution forms tuned in
    ``precision``."""
    B = P["basis"]
    models = {"baseline": net, "all_layers": convert(net, sel["candidates"], ratio=B["ratio"], coeff=B["coeff"],
                                                     init="random"),
              # every layer as the switch schedule trains it (QR-chosen basis filters, not the leading channels):
              # the model whose accuracy ``all_layers@switch`` reports, so its speed claim times this one
              "all_layers_switched": convert(net, sel["candidates"], ratio=B["ratio"], coeff=B["coeff"], init="qr")}
    modes, forms = {}, []
    if sel["layers"]:
        models["selected"] = convert(net, sel["layers"], ratio=sel["ratios"], coeff=B["coeff"], init="random")
        # what the switch schedule trains (basis filters chosen by QR, so not the leading channels), then the same
        # layers with each one's execution form picked by measurement: fastest impl for training, folded at inference
        models["selected_switched"] = convert(net, sel["layers"], ratio=sel["ratios"], coeff=B["coeff"], init="qr")
        tuned, inference, forms = bench.tune_forms(models["selected_switched"], batch_size=K["model_batch_size"],
                                                   input_shape=INPUT_SHAPE,
                                                   device=device, memory_format=K["memory_formats"][0],
                                                   min_run_time=K["min_run_time"], precision=precision)
        models["selected_tuned"], models["selected_tuned_inference"] = tuned, inference
        modes = {"selected_tuned": ("train_step",), "selected_tuned_inference": ("inference",)}
    return models, modes, forms


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
    mrows = [r for prec in precs for r in bench.bench_models(
        models, input_shape=INPUT_SHAPE, num_classes=len(CLASSES), batch_size=K["model_batch_size"], device=device,
        memory_format=K["memory_formats"][0], min_run_time=K["model_min_run_time"], modes=modes, precision=prec,
        repeats=K["model_repeats"])]
    # data loading alone and the trainer's overhead over a bare forward/backward/step loop
    D, _ = common.load_splits()
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
        if "selected_switched" in models:
            deploy.update(selected_basis=models["selected_switched"], selected_folded=fold(models["selected_switched"]))
        with tempfile.TemporaryDirectory() as tmp:
            onnx_rows = export.bench_onnx(deploy, tmp, input_shape=INPUT_SHAPE, batch_size=K["model_batch_size"],
                                          min_run_time=K["min_run_time"])
    return {"layers": rows, "models": mrows, "forms": forms, "loader": loader_t, "trainer": trainer_t,
            "peers": peer_rows, "onnx": onnx_rows, "precisions": precs, "precision": trained,
            "hardware": hardware_info(device)}


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
    # the measured train-step speedup of the selection as the pipeline trains it (switched, tuned forms)
    write_metrics(L["metrics"], {"speedup": step.get("selected_tuned", step.get("selected"))})
    by_prec = {prec: {f"{r['model']}.{r['mode']}": {k: r[k] for k in MODEL_SUMMARY_KEYS}
                      for r in t["models"] if r["precision"] == prec} for prec in t["precisions"]}
    write_json(L["summary"], {
        "key": key, "loader": t["loader"], "trainer": t["trainer"], "precision": trained, "profile": P["profile"],
        "hardware": t["hardware"], "peers": peers.summary(t["peers"]) if t["peers"] else [], "onnx": t["onnx"],
        "params_resolved": P, "models": by_prec[trained], "models_by_precision": by_prec})
    common.write_provenance("benchmark", {"key": key, **inputs})
    return {**t, "key": key, "models": pd.DataFrame(t["models"]), "layers": pd.DataFrame(t["layers"]),
            "peer_rows": pd.DataFrame(t["peers"], columns=None if t["peers"] else ["layer", "form"])}
