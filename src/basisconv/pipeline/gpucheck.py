"""The GPU check of the arXiv 2408.06024 replication: one command, library dependencies only, synthetic data.

    PYTHONPATH=src python -m basisconv.pipeline.gpucheck OUT_DIR             # make gpu-check OUT=OUT_DIR
    PYTHONPATH=src python -m basisconv.pipeline.gpucheck OUT_DIR --size tiny # the CPU test of the same code path

Needs neither DVC, papermill, Jupyter nor network (a lent GPU machine cannot install anything), fits in a few
minutes on one H100/H200-class GPU (``--budget-s``, sections past the budget are recorded as skipped), and writes
``OUT_DIR/gpu_check.json`` and ``OUT_DIR/README.md``:

1. per distinct conv shape of the paper-profile ResNet18 (width 64): dense vs basis (reduced, ``impl=auto``) vs the
   folded conv, fp32 and bf16 autocast, channels_last, each batch size, fwd and fwd+bwd, measured vs theoretical
   (MAC-ratio) speedup;
2. whole models (baseline, all candidate layers at 0.5, a selection-like subset): train step and inference, fp32
   and bf16, eager and ``torch.compile``;
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

from basisconv.core.basis import BasisConv2d
from basisconv.perf.bench import _pass_fn, kernel_floors, kernel_parts, sgd_step_fn, synthetic_batch, time_call
from basisconv.core.conv_guard import guard_convs
from basisconv.core.counting import count_macs
from basisconv.experiment.data import synthetic_cifar
from basisconv.experiment.data import CLASSES
from basisconv.experiment.models import INPUT_SHAPE, build_model
from basisconv.experiment.precision import PRECISIONS, autocast, dtype_name
from basisconv.experiment.provenance import hardware_info
from basisconv.core.surgery import conv_layers, convert

SIZES = {  # what each size measures; "full" is the GPU check, "tiny" its CPU test
    "full": {"width": 64, "batch_sizes": (256, 512), "ratios": (0.25, 0.5), "min_run_time": 0.2, "epochs": 2,
             "per_class": 4500, "ddp_per_class": 200},
    "tiny": {"width": 4, "batch_sizes": (8,), "ratios": (0.5,), "min_run_time": 0.01, "epochs": 1,
             "per_class": 20, "ddp_per_class": 10},
}
SUBSET = ("layer3.0.conv1", "layer3.0.conv2", "layer3.1.conv1", "layer3.1.conv2", "layer4.0.conv1",
          "layer4.0.conv2", "layer4.1.conv1", "layer4.1.conv2")  # selection-like: the late, wide layers


def layer_rows(net, device, cfg: dict) -> list[dict]:
    """Section 1: every distinct conv shape, dense / basis / folded, both precisions, batches and passes, and the
    basis layer's two kernels alone in fwd+bwd (``bench.kernel_parts``: the kernel floor of the layer)."""
    fmt = torch.channels_last
    seen, rows = set(), []
    for rec in conv_layers(net, (1, *INPUT_SHAPE)):
        shape = (rec.in_channels, rec.out_channels, rec.kernel_size, rec.stride, rec.input_hw)
        if shape in seen or rec.kernel_size[0] != 3:
            continue
        seen.add(shape)
        conv = net.get_submodule(rec.name).to(device, memory_format=fmt)
        dense_macs = count_macs(conv, (1, rec.in_channels, *rec.input_hw))
        variants = [("dense", None, conv, None)]
        for q in cfg["ratios"]:
            b = BasisConv2d.from_conv(conv, ratio=q, init="qr").to(device, memory_format=fmt)
            variants += [("basis", q, b, None), ("folded", q, b.to_conv().to(device, memory_format=fmt), None)]
            variants += [(name, q, part.to(device, memory_format=fmt), name)
                         for name, part in kernel_parts(b).items()]
        for bs in cfg["batch_sizes"]:
            x = torch.randn(bs, rec.in_channels, *rec.input_hw, device=device).contiguous(memory_format=fmt)
            for prec in PRECISIONS:
                for pass_ in ("fwd", "fwd+bwd"):
                    base = None
                    for name, q, mod, part in variants:
                        if part is not None and pass_ != "fwd+bwd":
                            continue  # the kernel floor is held in the target's pass only
                        inp = x
                        if part == "basis_mix":  # its input is Y' (N, r, H', W'), the kxk conv's output
                            inp = torch.randn(bs, mod.in_channels, *rec.output_hw, device=device).contiguous(
                                memory_format=fmt)
                        ms = time_call(_pass_fn(mod, inp, pass_, prec), min_run_time=cfg["min_run_time"])[0]
                        base = ms if name == "dense" else base
                        macs = count_macs(mod, (1, *inp.shape[1:]))
                        rows.append({"layer": rec.name, "c_in": rec.in_channels, "c_out": rec.out_channels,
                                     "hw": rec.input_hw[0], "variant": name, "ratio": q, "batch_size": bs,
                                     "precision": prec, "dtype": dtype_name(prec), "pass": pass_, "median_ms": ms,
                                     "theoretical_speedup": dense_macs / macs, "measured_speedup": base / ms})
    return rows


def _models(net, candidates) -> dict:
    return {"baseline": net, "all_layers": convert(net, candidates, ratio=0.5, init="random"),
            "subset": convert(net, [n for n in SUBSET if n in candidates], ratio=0.5, init="random")}


def model_rows(net, candidates, device, cfg: dict, compiled: bool = False) -> list[dict]:
    """Section 2: train step and inference of the three models in both dtypes; ``compiled``: through
    ``torch.compile``, bf16 train steps only (each compile costs tens of seconds)."""
    rows, base = [], {}
    bs = cfg["batch_sizes"][0]
    x, y = synthetic_batch(bs, INPUT_SHAPE, len(CLASSES), device=device)
    for name, model in _models(net, candidates).items():
        macs = count_macs(model, (1, *INPUT_SHAPE))
        # one runner per model (one compile per model)
        m = copy.deepcopy(model).to(device, memory_format=torch.channels_last)
        guard_convs(m)  # oneDNN #6035 on a CPU run of the check
        runner = torch.compile(m) if compiled else m
        opt = torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9)
        for prec in (("bf16",) if compiled else PRECISIONS):
            amp = prec == "bf16"
            step = sgd_step_fn(runner, x, y, amp=amp, optimizer=opt)

            def infer(amp=amp):
                with torch.no_grad(), autocast(device, amp):
                    runner(x)
            for mode, fn in ((("train_step", step),) if compiled else (("train_step", step), ("inference", infer))):
                m.train(mode == "train_step")
                ms = time_call(fn, min_run_time=cfg["min_run_time"], warmup=3)[0]
                key = (mode, prec, compiled)
                base.setdefault(key, (ms, macs))
                rows.append({"model": name, "mode": mode, "precision": prec, "dtype": dtype_name(prec),
                             "compiled": compiled,
                             "batch_size": bs, "median_ms": ms, "images_per_s": bs / ms * 1e3,
                             "theoretical_speedup": base[key][1] / macs, "measured_speedup": base[key][0] / ms})
    return rows


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
        rows = pd.DataFrame(r["layers"])
        idx = ["c_in", "c_out", "hw", "variant", "ratio"]
        kern = rows.variant.isin(["basis_kxk", "basis_mix"])
        t = rows[(rows.variant != "dense") & ~kern].pivot_table(index=idx, columns=["dtype", "pass"],
                                                                 values="measured_speedup")
        theo = rows.groupby(idx).theoretical_speedup.first()
        t.columns = [f"{d} {p}" for d, p in t.columns]
        t.insert(0, "theory", theo.reindex(t.index))
        floors = pd.DataFrame(kernel_floors(r["layers"], basis_variant="basis"))
        if len(floors):  # the kernel floor t_dense / (t_kxk + t_mix) of the basis rows, fwd+bwd; median over batches
            shape = rows.drop_duplicates("layer").set_index("layer")[["c_in", "c_out", "hw"]]
            floors = floors.join(shape, on="layer").assign(dtype=lambda f: f.precision.map(dtype_name))
            floor = floors.groupby(["c_in", "c_out", "hw", "ratio", "dtype"]).floor_speedup.median()
            for dt in floor.index.get_level_values("dtype").unique():
                f = floor.xs(dt, level="dtype")
                t[f"{dt} fwd+bwd kernel floor"] = [f.get((ci, co, h, q)) if v == "basis" else None
                                                   for ci, co, h, v, q in t.index]
        lines += [f"## Per layer: measured speedup over dense (batch {r['layers'][0]['batch_size']}+, "
                  "channels_last)", "", t.reset_index().to_markdown(index=False, floatfmt=".2f"), ""]
    for key, title in (("models", "Whole models (eager)"), ("models_compiled", "Whole models (torch.compile, bf16)")):
        if r.get(key):
            lines += [f"## {title}", "", pd.DataFrame(r[key]).to_markdown(index=False, floatfmt=".3g"), ""]
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
