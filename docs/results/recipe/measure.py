"""Accuracy per CPU-minute of training recipes for the realistic CPU profile (issue 21), measured with the
package's own pieces: ``TensorLoader`` (random crop + flip), ``build_model``, ``lr_factor`` (one-cycle), SGD with
Nesterov, bf16 autocast where the CPU has it, channels_last.

One training per call; what is free to measure alongside one training is measured alongside it: evaluation with and
without flip test-time augmentation (TTA), and exponential moving averages (EMA) of the weights at several decays
(shadow copies updated after every step; BN buffers averaged too). EMAs are evaluated over the last epochs only,
where they matter. Every epoch appends one JSON line to ``--out`` (train time, eval time, accuracies), so a killed
run keeps what it measured.

    python docs/results/recipe/measure.py --epochs 10 --batch 500 --lr 0.2 --warmup 0.2 --ls 0.2 --out A.jsonl
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from basisconv.experiment.data import fetch_cifar10, load_cifar10
from basisconv.experiment.loader import TensorLoader
from basisconv.experiment.models import build_model
from basisconv.experiment.precision import autocast, effective_amp
from basisconv.experiment.provenance import hardware_info
from basisconv.experiment.train import lr_factor

MIRROR = "../shared/data/cifar-10-python.tar.gz"
MIRROR_MD5 = "73a218927d26ccb416369341913728df"


@torch.no_grad()
def accuracy(model, loader, amp, tta):
    model.eval()
    hit = n = 0
    with autocast(loader.device, amp):
        for x, y in loader:
            out = model(x).float().softmax(1)
            if tta:  # flip TTA: mean of the probabilities of the image and its mirror image
                out = out + model(x.flip(3)).float().softmax(1)
            hit += int((out.argmax(1) == y).sum())
            n += len(y)
    model.train()
    return hit / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--lr", type=float, default=0.2)
    ap.add_argument("--warmup", type=float, default=0.2, help="fraction of the run")
    ap.add_argument("--ls", type=float, default=0.2, help="label smoothing")
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--schedule", default="onecycle")
    ap.add_argument("--ema", type=float, nargs="*", default=[0.99, 0.995, 0.998])
    ap.add_argument("--ema-eval-epochs", type=int, default=3, help="evaluate the EMAs over the last N epochs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--root", default="/tmp/cifar")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    out = Path(a.out)
    done = [json.loads(l) for l in out.read_text().splitlines()] if out.is_file() else []
    if done and done[-1].get("final"):
        print("done already:", out)
        return
    out.write_text("")  # a partial run restarts (no checkpoint here: measurements, not results)
    fetch_cifar10(a.root, url=MIRROR, md5=MIRROR_MD5)
    train, val, test = (load_cifar10(a.root, s, val_size=5000) for s in ("train", "val", "test"))
    dev = torch.device("cpu")
    amp = effective_amp(True, dev)
    torch.manual_seed(a.seed)
    model = build_model("resnet18", width=a.width).to(memory_format=torch.channels_last)
    emas = {d: copy.deepcopy(model) for d in a.ema}
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, nesterov=True, weight_decay=a.wd)
    loader = TensorLoader(*train, a.batch, train=True, seed=a.seed, channels_last=True)
    vl = TensorLoader(*val, 500, train=False, channels_last=True)
    tl = TensorLoader(*test, 500, train=False, channels_last=True)
    total, warm = a.epochs * len(loader), round(a.warmup * a.epochs * len(loader))
    meta = {"args": vars(a), "amp": amp, "hardware": hardware_info(dev), "steps_per_epoch": len(loader)}
    with out.open("a") as f:
        f.write(json.dumps({"meta": meta}) + "\n")
    step = 0
    for epoch in range(a.epochs):
        loader.set_epoch(epoch)
        t0 = time.perf_counter()
        for x, y in loader:
            for g in opt.param_groups:
                g["lr"] = a.lr * lr_factor(step, total, warm, a.schedule)
            with autocast(dev, amp):
                loss = F.cross_entropy(model(x).float(), y, label_smoothing=a.ls)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            with torch.no_grad():  # EMA of parameters and buffers (BN statistics), warmed up over the first steps
                for d, e in emas.items():
                    dt = min(d, (1 + step) / (10 + step))
                    for pe, pm in zip(e.state_dict().values(), model.state_dict().values()):
                        if pe.dtype.is_floating_point:
                            pe.mul_(dt).add_(pm, alpha=1 - dt)
                        else:
                            pe.copy_(pm)
        t_train = time.perf_counter() - t0
        t1 = time.perf_counter()
        row = {"epoch": epoch + 1, "train_s": t_train, "loss": float(loss), "val": accuracy(model, vl, amp, False)}
        row["eval_s"] = time.perf_counter() - t1
        row["val_tta"] = accuracy(model, vl, amp, True)
        if epoch >= a.epochs - a.ema_eval_epochs:
            for d, e in emas.items():
                row[f"val_ema{d}"] = accuracy(e, vl, amp, False)
                row[f"val_ema{d}_tta"] = accuracy(e, vl, amp, True)
        if epoch == a.epochs - 1:
            row["final"] = True
            row["test"], row["test_tta"] = accuracy(model, tl, amp, False), accuracy(model, tl, amp, True)
            for d, e in emas.items():
                row[f"test_ema{d}"], row[f"test_ema{d}_tta"] = accuracy(e, tl, amp, False), accuracy(e, tl, amp, True)
        print(json.dumps(row), flush=True)
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
