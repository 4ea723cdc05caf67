"""Stage ``benchmark``: the paper's speed claim, measured honestly (arXiv 2408.06024, forward/backward cost).

Per layer: every conv of the model at each ``benchmark.ratios`` entry, forward and forward+backward, dense
``nn.Conv2d`` against ``BasisConv2d`` (reduced and full coefficient matrices) and the folded conv, next to the
theoretical speedup (the MAC ratio ``C_out C_in k^2 / (r C_in k^2 + (C_out - r) r)``). Whole models: training step
and inference of the baseline, all-layers basis, the selected layers fresh and as the switch schedule trains them
(QR basis), and with execution forms tuned by measurement; then data-loader throughput and trainer overhead, and
the performance targets (``bench.TARGETS``); the peers at the same parameter budget (``basisconv.perf.peers``:
tensorly-torch's Tucker conv, the full-coefficient factorization) on every distinct shape; and the deployment path
(``basisconv.perf.export``: ONNX export of the basis and folded forms, checked and timed in onnxruntime). ``torch.utils.benchmark`` with warm-up excluded and device sync;
hardware and versions go into every row. Timings are not reused across runs (nothing is resumed here).
"""
from __future__ import annotations

import pandas as pd
import torch

import tempfile

from basisconv.perf import bench, export, peers
from basisconv.experiment.io import read_json, write_frame, write_json, write_metrics
from basisconv.pipeline.layout import STAGES
from basisconv.experiment.data import CLASSES
from basisconv.experiment.models import INPUT_SHAPE, build_model
from basisconv.experiment.precision import precision_name
from basisconv.experiment.provenance import hardware_info
from basisconv.core.surgery import convert, fold
from basisconv.pipeline.stages import common

L = STAGES["benchmark"]
# a whole-model row's numbers in the summary: the speedup with its interval over the interleaved timing rounds
# (what the speed claims are decided on, ``pipeline.claims.speed_claims``), and each round's time with the MACs
# (what the schedules' cost is decided on, ``pipeline.claims.schedule_cost_claim``)
MODEL_SUMMARY_KEYS = ("median_ms", "measured_speedup", "theoretical_speedup", "images_per_s", "repeats",
                      "speedup_geomean", "speedup_low", "speedup_high", "speedup_verdict", "round_ms", "macs")


def precisions(P: dict) -> list[str]:
    """fp32 (the paper's cost model) and, when it differs, the precision training runs in (``train.amp`` resolved
    for the device): the targets are held in the latter, the dtype the claim is made for."""
    trained = precision_name(common.resolved_train(P["train"])["amp"])
    return list(dict.fromkeys(["fp32", trained]))


def model_layers(P: dict, sel: dict) -> dict:
    """``{model: {layer: ratio}}`` of the whole models timed, for the layer-sum bound of ``bench.targets``."""
    every = {name: P["basis"]["ratio"] for name in sel["candidates"]}
    out = {"all_layers": every, "all_layers_switched": every}
    if sel["layers"]:
        out.update({m: dict(sel["ratios"]) for m in ("selected", "selected_switched", "selected_tuned")})
    return out


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


SPEEDUP_KEYS = ["layer", "ratio", "batch_size", "memory_format", "precision"]


def basis_speedups(layer_rows: list[dict], memory_format: str, basis_variant: str = "basis_reduced") -> pd.DataFrame:
    """One row per timed ``basis_variant`` layer in fwd+bwd (the target's pass) and ``memory_format``: its keys
    (``SPEEDUP_KEYS``), ``theoretical_speedup``, ``measured_speedup = t_dense / t_basis`` with the interval the two
    timings' IQRs give,

        speedup_low = (t_dense - iqr_dense / 2) / (t_basis + iqr_basis / 2)
        speedup_high = (t_dense + iqr_dense / 2) / (t_basis - iqr_basis / 2)      (NaN when the divisor is <= 0)

    and the kernel floor ``t_dense / (t_kxk + t_mix)`` of ``bench.kernel_floors`` (NaN where the two kernels were
    not timed): what the benchmark notebook's per-layer figures draw."""
    cols = [*SPEEDUP_KEYS, "theoretical_speedup", "measured_speedup", "median_ms", "iqr_ms", "dense_ms",
            "dense_iqr_ms", "speedup_low", "speedup_high", "floor_speedup"]
    rows = [r for r in layer_rows if r["pass"] == "fwd+bwd" and r.get("memory_format") == memory_format]
    dense = {(r["layer"], r["batch_size"], r["memory_format"], r["precision"]): r for r in rows
             if r["variant"] == "dense"}
    out = []
    for r in rows:
        d = dense.get((r["layer"], r["batch_size"], r["memory_format"], r["precision"]))
        if r["variant"] != basis_variant or d is None:
            continue
        slow, fast = r["median_ms"] + r["iqr_ms"] / 2, r["median_ms"] - r["iqr_ms"] / 2  # the basis time's IQR ends
        out.append({**{k: r[k] for k in SPEEDUP_KEYS}, "theoretical_speedup": r["theoretical_speedup"],
                    "measured_speedup": r["measured_speedup"], "median_ms": r["median_ms"], "iqr_ms": r["iqr_ms"],
                    "dense_ms": d["median_ms"], "dense_iqr_ms": d["iqr_ms"],
                    "speedup_low": (d["median_ms"] - d["iqr_ms"] / 2) / slow,
                    "speedup_high": (d["median_ms"] + d["iqr_ms"] / 2) / fast if fast > 0 else float("nan")})
    frame = pd.DataFrame(out, columns=cols[:-1])
    floors = pd.DataFrame(bench.kernel_floors(rows, basis_variant), columns=[*SPEEDUP_KEYS, "floor_speedup"])
    return frame.merge(floors[[*SPEEDUP_KEYS, "floor_speedup"]], on=SPEEDUP_KEYS, how="left")[cols]


def run(P: dict, progress=True) -> dict:
    """Time layers and models, record targets. Returns ``{"layers", "basis_speedups" (``basis_speedups`` of the
    first memory format), "models", "forms", "targets", "targets_by_precision", "precision", "hardware", "peers"
    (summary), "peer_rows" (DataFrame), "onnx"}``."""
    K = P["benchmark"]
    device = common.setup(P["train"], threads=K["threads"])
    sel = read_json(L["selection"])
    torch.manual_seed(0)
    net = build_model(P["model"]["arch"], width=P["model"]["width"])  # timing does not depend on trained weights
    precs = precisions(P)
    trained = precs[-1]  # the precision training runs in: targets, tuned forms and loader/trainer timings use it
    rows = bench.bench_layers(net, K["ratios"], input_shape=INPUT_SHAPE, batch_sizes=K["batch_sizes"],
                              memory_formats=K["memory_formats"], device=device, min_run_time=K["min_run_time"],
                              precisions=precs, progress=progress)
    layers_df = pd.DataFrame(rows)
    write_frame(L["layers"], layers_df)
    models, modes, forms = models_to_time(P, net, sel, device, K, precision=trained)
    write_frame(L["forms"], pd.DataFrame(forms, columns=None if forms else ["layer", "train_impl", "inference_form"]))
    mrows = [r for prec in precs for r in bench.bench_models(
        models, input_shape=INPUT_SHAPE, num_classes=len(CLASSES), batch_size=K["model_batch_size"], device=device,
        memory_format=K["memory_formats"][0], min_run_time=K["model_min_run_time"], modes=modes, precision=prec,
        repeats=K["model_repeats"])]
    models_df = pd.DataFrame(mrows)
    write_frame(L["models"], models_df)
    # data loading alone and the trainer's overhead over a bare forward/backward/step loop
    D, _ = common.load_splits()
    fmt_cl = K["memory_formats"][0] == "channels_last"
    loader_t = bench.bench_loader(*D["train"], batch_size=K["model_batch_size"], device=device,
                                  channels_last=fmt_cl, min_run_time=K["min_run_time"])
    trainer_t = bench.bench_trainer_overhead(net, *D["train"], batch_size=K["model_batch_size"],
                                             steps=K["overhead_steps"], device=device, channels_last=fmt_cl,
                                             amp=trained == "bf16")
    # the targets in every precision timed; the one training runs in is the one the claim is held to
    by_prec = {prec: bench.targets(rows, mrows, loader_t, trainer_t, memory_format=K["memory_formats"][0],
                                   precision=prec, model_layers=model_layers(P, sel)) for prec in precs}
    tg = by_prec[trained]
    # the peers at the basis layer's parameter budget, on every distinct 3x3 shape (fp32, and bf16 where native)
    peer_rows = peers.bench_peers(net, K["ratios"], input_shape=INPUT_SHAPE, batch_size=K["batch_sizes"][0],
                                  memory_format=K["memory_formats"][0], device=device,
                                  min_run_time=K["min_run_time"], peers=K["peers"],
                                  progress=progress) if K["peers"] else []
    write_frame(L["peers"], pd.DataFrame(peer_rows, columns=None if peer_rows else ["layer", "form"]))
    # deployment: the model as trained (basis form) and folded, exported to ONNX, checked and timed in onnxruntime
    onnx_rows = []
    if K["onnx"]:
        deploy = {"baseline": net}
        if "selected_switched" in models:
            deploy.update(selected_basis=models["selected_switched"], selected_folded=fold(models["selected_switched"]))
        with tempfile.TemporaryDirectory() as tmp:
            onnx_rows = export.bench_onnx(deploy, tmp, input_shape=INPUT_SHAPE, batch_size=K["model_batch_size"],
                                          min_run_time=K["min_run_time"])
    write_frame(L["onnx"], pd.DataFrame(onnx_rows, columns=None if onnx_rows else ["model"]))
    hw = hardware_info(device)
    step = {r["model"]: r["measured_speedup"] for r in mrows if r["mode"] == "train_step"
            and r["precision"] == trained}
    # the measured train-step speedup of the selection as the pipeline trains it (switched, tuned forms)
    write_metrics(L["metrics"], {"speedup": step.get("selected_tuned", step.get("selected"))})
    write_json(L["summary"], {
        "loader": loader_t, "trainer": trainer_t, "targets": tg, "targets_by_precision": by_prec,
        "precision": trained, "profile": P["profile"], "hardware": hw,
        "peers": peers.summary(peer_rows) if peer_rows else [], "onnx": onnx_rows,
        "params_resolved": P,
        "models": {f"{r['model']}.{r['mode']}": {k: r[k] for k in MODEL_SUMMARY_KEYS}
                   for r in mrows if r["precision"] == trained},
        "models_by_precision": {prec: {f"{r['model']}.{r['mode']}": {
            k: r[k] for k in MODEL_SUMMARY_KEYS}
            for r in mrows if r["precision"] == prec} for prec in precs}})
    common.write_provenance("benchmark", common.inputs("benchmark", P))
    return {"layers": layers_df, "basis_speedups": basis_speedups(rows, K["memory_formats"][0]), "models": models_df,
            "forms": forms, "targets": tg, "targets_by_precision": by_prec, "precision": trained, "hardware": hw,
            "peers": peers.summary(peer_rows) if peer_rows else [],
            "peer_rows": pd.DataFrame(peer_rows, columns=None if peer_rows else ["layer", "form"]), "onnx": onnx_rows}
