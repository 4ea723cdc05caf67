"""The GPU check of the arXiv 2408.06024 replication: one command, library dependencies only, synthetic data.

    PYTHONPATH=src python -m basisconv.pipeline.gpucheck OUT_DIR             # make gpu-check OUT=OUT_DIR
    PYTHONPATH=src python -m basisconv.pipeline.gpucheck OUT_DIR --size tiny # the CPU test of the same code path

Needs neither DVC, papermill, Jupyter nor network (a lent GPU machine cannot install anything), fits in a few
minutes on one H100/H200-class GPU (``--budget-s``, sections past the budget are recorded as skipped), and writes
``OUT_DIR/gpu_check.json`` and ``OUT_DIR/README.md``:

1. per distinct conv shape of the paper-profile ResNet18 (width 64), through ``bench.bench_layers``: dense vs basis
   (reduced ``impl=auto``, and full) vs the folded conv, fp32 and bf16 autocast, channels_last, each batch size,
   fwd and fwd+bwd, measured vs theoretical (MAC-ratio) speedup, and the kernel floor;
2. whole models (baseline, all candidate layers at 0.5, a selection-like subset), through ``bench.bench_models``:
   train step and inference, fp32 and bf16, eager and ``torch.compile``;
3. a few epochs of real training of the paper-profile model with bf16 AMP and channels_last on synthetic
   CIFAR-shaped data (baseline, all layers, the subset): epoch time, images/s, and the projected wall time of the
   paper profile's ``dvc repro`` on this device (``basisconv.pipeline.estimate`` with the measured seconds per image);
4. a one-process ``torchrun`` training (nccl on GPU, gloo on CPU) that must complete.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from basisconv.core.surgery import convert
from basisconv.experiment.data import CLASSES, synthetic_cifar
from basisconv.experiment.models import INPUT_SHAPE, build_model
from basisconv.experiment.precision import PRECISIONS, dtype_name
from basisconv.experiment.provenance import hardware_info
from basisconv.perf.analysis import kernel_floors
from basisconv.perf.bench import bench_layers, bench_models, distinct_shapes

SIZES = {  # what each size measures; "full" is the GPU check, "tiny" its CPU test
    "full": {"width": 64, "batch_sizes": (256, 512), "ratios": (0.25, 0.5), "min_run_time": 0.2, "epochs": 2,
             "per_class": 4500, "ddp_per_class": 200},
    "tiny": {"width": 4, "batch_sizes": (8,), "ratios": (0.5,), "min_run_time": 0.01, "epochs": 1,
             "per_class": 20, "ddp_per_class": 10},
}
SUBSET = ("layer3.0.conv1", "layer3.0.conv2", "layer3.1.conv1", "layer3.1.conv2", "layer4.0.conv1",
          "layer4.0.conv2", "layer4.1.conv1", "layer4.1.conv2")  # selection-like: the late, wide layers


def layer_rows(net, device, cfg: dict) -> list[dict]:
    """Section 1: ``bench.bench_layers`` on one conv of every distinct 3x3 shape (``bench.distinct_shapes``): dense,
    basis (reduced, full), folded, and the reduced layer's two kernels alone in fwd+bwd (its kernel floor), in both
    precisions, each batch size, channels_last."""
    layers = [r.name for r in distinct_shapes(net, INPUT_SHAPE)]
    return bench_layers(net, cfg["ratios"], input_shape=INPUT_SHAPE, batch_sizes=cfg["batch_sizes"], device=device,
                        min_run_time=cfg["min_run_time"], layers=layers, precisions=tuple(PRECISIONS),
                        progress=False)


def _models(net, candidates) -> dict:
    return {"baseline": net, "all_layers": convert(net, candidates, ratio=0.5, init="random"),
            "subset": convert(net, [n for n in SUBSET if n in candidates], ratio=0.5, init="random")}


def model_rows(net, candidates, device, cfg: dict, compiled: bool = False) -> list[dict]:
    """Section 2: ``bench.bench_models`` of the three models, train step and inference in both precisions;
    ``compiled``: through ``torch.compile``, bf16 train steps only (each compile costs tens of seconds)."""
    models = _models(net, candidates)
    modes = {name: ("train_step",) for name in models} if compiled else None
    return [r for prec in (("bf16",) if compiled else PRECISIONS) for r in bench_models(
        models, input_shape=INPUT_SHAPE, num_classes=len(CLASSES), batch_size=cfg["batch_sizes"][0], device=device,
        min_run_time=cfg["min_run_time"], modes=modes, precision=prec, compile=compiled, repeats=3)]


def training_rows(net, candidates, device, cfg: dict) -> list[dict]:
    """Section 3: real training (bf16 AMP on CUDA, channels_last) of the three models on synthetic data."""
    from basisconv.experiment.train import TrainConfig, train
    data = synthetic_cifar("train", n_per_class=cfg["per_class"]), synthetic_cifar("val", n_per_class=100)
    rows = []
    for name, model in _models(net, candidates).items():
        tcfg = TrainConfig(epochs=cfg["epochs"], batch_size=cfg["batch_sizes"][0], lr=0.1, warmup_epochs=0,
                           amp=True, channels_last=True, eval_batch_size=500)
        res = train(copy.deepcopy(model), *data, tcfg, device=device, progress=False)
        last = res.history[-1]  # the first epoch includes allocation and kernel selection
        rows.append({"model": name, "epochs": cfg["epochs"], "images": last["images"],
                     "epoch_time_s": last["epoch_time"], "images_per_s": last["images_per_s"],
                     "val_acc": last["val_acc"]})
    return rows


def projected_paper_repro(sec_per_image: float, profiles_dir="profiles") -> dict:
    """``basisconv.pipeline.estimate`` of the paper profile with this device's measured seconds per training image."""
    from basisconv.pipeline.estimate import estimate
    from basisconv.pipeline.params import compose
    est = estimate(compose("paper", profile_dir=profiles_dir), sec_per_image=sec_per_image)
    return {"seconds_per_image": sec_per_image, "total_hours": est["total_seconds"] / 3600,
            "stages_hours": {k: v["seconds"] / 3600 for k, v in est["stages"].items()}}


def ddp_check(device, cfg: dict, timeout_s: int = 300) -> dict:
    """Section 4: ``torchrun --standalone --nproc_per_node=1`` of a short training (nccl on GPU, gloo on CPU)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
           "-m", "basisconv.pipeline.gpucheck", "-", "--ddp-worker", "--size", cfg["name"], "--device", device.type]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    t0 = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    ok = run.returncode == 0 and "ddp worker done" in run.stdout
    return {"completed": ok, "backend": "nccl" if device.type == "cuda" else "gloo",
            "seconds": time.perf_counter() - t0, "tail": (run.stdout + run.stderr)[-1500:]}


def _ddp_worker(cfg: dict, device: str) -> None:
    from basisconv.experiment import distributed as dist_
    from basisconv.experiment.train import TrainConfig, train
    dev = dist_.init_from_env(device)
    try:
        net = build_model("resnet18", width=cfg["width"])
        data = synthetic_cifar("train", n_per_class=cfg["ddp_per_class"]), None
        res = train(net, *data, TrainConfig(epochs=1, batch_size=20, lr=0.05, warmup_epochs=0, amp=True,
                                            channels_last=True), device=dev, progress=False)
        print(f"ddp worker done: backend {torch.distributed.get_backend() if dist_.is_distributed() else 'none'}, "
              f"world {dist_.world_size()}, loss {res.history[-1]['train_loss']:.3f}")
    finally:
        dist_.destroy()


def markdown(r: dict) -> str:
    import pandas as pd
    hw = r["hardware"]
    lines = [f"# GPU check: {hw['device_name']}", "",
             f"torch {hw['torch']}, CUDA {hw['cuda']}, torchvision {hw['torchvision']}, Python {hw['python']}; "
             f"size `{r['size']}`, {r['seconds']:.0f} s. Synthetic CIFAR-shaped data (timings do not depend on "
             "the pixels). Produced by `make gpu-check`.", ""]
    if r.get("skipped"):
        lines += [f"Skipped (time budget): {', '.join(r['skipped'])}.", ""]
    if r.get("layers"):
        rows = pd.DataFrame(r["layers"]).rename(columns={"in_channels": "c_in", "out_channels": "c_out",
                                                           "input_hw": "hw"})
        idx = ["c_in", "c_out", "hw", "variant", "ratio"]
        kern = rows.variant.isin(["basis_kxk", "basis_mix"])
        t = rows[(rows.variant != "dense") & ~kern].pivot_table(index=idx, columns=["dtype", "pass"],
                                                                 values="measured_speedup")
        theo = rows.groupby(idx).theoretical_speedup.first()
        t.columns = [f"{d} {p}" for d, p in t.columns]
        t.insert(0, "theory", theo.reindex(t.index))
        floors = pd.DataFrame(kernel_floors(r["layers"]))
        if len(floors):  # the kernel floor t_dense / (t_kxk + t_mix) of the basis rows, fwd+bwd; median over batches
            shape = rows.drop_duplicates("layer").set_index("layer")[["c_in", "c_out", "hw"]]
            floors = floors.join(shape, on="layer").assign(dtype=lambda f: f.precision.map(dtype_name))
            floor = floors.groupby(["c_in", "c_out", "hw", "ratio", "dtype"]).floor_speedup.median()
            for dt in floor.index.get_level_values("dtype").unique():
                f = floor.xs(dt, level="dtype")
                t[f"{dt} fwd+bwd kernel floor"] = [f.get((ci, co, h, q)) if v == "basis_reduced" else None
                                                   for ci, co, h, v, q in t.index]
        lines += [f"## Per layer: measured speedup over dense (batch {r['layers'][0]['batch_size']}+, "
                  "channels_last)", "", t.reset_index().to_markdown(index=False, floatfmt=".2f"), ""]
    for key, title in (("models", "Whole models (eager)"), ("models_compiled", "Whole models (torch.compile, bf16)")):
        if r.get(key):
            cols = ["model", "mode", "precision", "batch_size", "median_ms", "iqr_ms", "images_per_s",
                    "theoretical_speedup", "measured_speedup", "speedup_low", "speedup_high"]  # 95 % CI, 3 rounds
            lines += [f"## {title}", "", pd.DataFrame(r[key])[cols].to_markdown(index=False, floatfmt=".3g"), ""]
    if r.get("training"):
        lines += ["## Training (bf16 AMP, channels_last; last epoch)", "",
                  pd.DataFrame(r["training"]).to_markdown(index=False, floatfmt=".3g"), ""]
    if r.get("projection"):
        p = r["projection"]
        lines += [f"Projected wall time of the paper profile's `dvc repro` on this device: {p['total_hours']:.1f} h "
                  "(" + ", ".join(f"{k} {v:.2f} h" for k, v in p["stages_hours"].items()) + f"), from "
                  f"{1e3 * p['seconds_per_image']:.3f} ms per training image measured above.", ""]
    if r.get("ddp"):
        d = r["ddp"]
        lines += [f"One-process `torchrun` ({d['backend']}): {'completed' if d['completed'] else 'FAILED'} in "
                  f"{d['seconds']:.0f} s.", ""]
    return "\n".join(lines)


def run(out_dir, size: str = "full", device="auto", budget_s: float = 420.0, compile_: bool | None = None) -> dict:
    from basisconv.experiment.distributed import resolve_device
    from basisconv.experiment.io import atomic_write_text, write_json
    from basisconv.core.sensitivity import candidate_layers
    cfg = {**SIZES[size], "name": size}
    device = resolve_device(device)
    compile_ = device.type == "cuda" if compile_ is None else compile_
    torch.manual_seed(0)
    net = build_model("resnet18", width=cfg["width"]).eval()
    candidates = candidate_layers(net, ["*"], ["conv1", "*downsample*"], [3])
    t0 = time.perf_counter()
    r = {"size": size, "hardware": hardware_info(device), "bf16_supported": bool(
        device.type != "cuda" or torch.cuda.is_bf16_supported()), "skipped": []}
    # most wanted first: a section past the budget is skipped, so compile (slowest, least needed) goes last
    sections = [("layers", lambda: layer_rows(net, device, cfg)),
                ("training", lambda: training_rows(net, candidates, device, cfg)),
                ("ddp", lambda: ddp_check(device, cfg)),
                ("models", lambda: model_rows(net, candidates, device, cfg)),
                ("models_compiled", lambda: model_rows(net, candidates, device, cfg, compiled=True) if compile_ else [])]
    for name, fn in sections:
        if time.perf_counter() - t0 > budget_s:
            r["skipped"].append(name)
            continue
        try:
            r[name] = fn()
        except Exception as e:  # one failing section must not lose the others' numbers
            r[name] = None
            r.setdefault("errors", {})[name] = f"{type(e).__name__}: {e}"
        r["seconds"] = time.perf_counter() - t0
        write_json(Path(out_dir) / "gpu_check.json", r)  # as it goes: a killed check keeps what it measured
    if r.get("training"):
        base = next(t for t in r["training"] if t["model"] == "baseline")
        r["projection"] = projected_paper_repro(1 / base["images_per_s"])
    r["seconds"] = time.perf_counter() - t0
    write_json(Path(out_dir) / "gpu_check.json", r)
    atomic_write_text(Path(out_dir) / "README.md", markdown(r))
    return r


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--size", choices=list(SIZES), default="full")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--budget-s", type=float, default=420.0, help="start no new section after this many seconds")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--ddp-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.ddp_worker:
        _ddp_worker({**SIZES[args.size], "name": args.size}, args.device)
        return
    r = run(args.out_dir, args.size, args.device, args.budget_s, False if args.no_compile else None)
    print(Path(args.out_dir) / "README.md")
    print(json.dumps({k: r.get(k) is not None for k in ("layers", "training", "ddp", "models", "models_compiled")}))
    if r.get("errors") or not (r.get("ddp") or {}).get("completed", False):
        raise SystemExit(f"gpu check incomplete: {r.get('errors') or 'torchrun did not complete'}")


if __name__ == "__main__":
    main()
