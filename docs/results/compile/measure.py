"""Does ``torch.compile`` pay for training on this CPU? Eager against compiled training with the package's trainer.

``train.compile`` (``TrainConfig.compile``) wraps the training forward/backward in ``torch.compile``. Whether that is
worth it is a trade: the first epoch pays the compile time, every later epoch may be faster. This script trains the
realistic CPU profile's model (ResNet18 width 32, channels_last, batch 500, bf16 autocast where the CPU has it) with
``basisconv.experiment.train.train`` on ``--images`` synthetic CIFAR-shaped images for ``--epochs`` epochs, eager and
compiled, in ``--rounds`` interleaved rounds (eager, compiled, eager, ...; each a fresh model; a later compiled
round may find some of the first one's compiled code in the process's cache, so the first round's first epoch is the
cold compile cost), and writes per epoch: wall time, per-image time. From the medians it derives

    compile cost     = t_compiled(epoch 1) - t_compiled(epochs >= 2)
    saving per epoch = t_eager(epochs >= 2) - t_compiled(epochs >= 2)
    break-even       = compile cost / saving per epoch  (epochs of --images images)

and for the cpu-full profile's trainings (45,000 images, 10 epochs; a switch run trains 1 epoch after its
snapshot and recompiles after the switch) whether compiling would shorten them. Results: ``--out`` (JSON lines,
one per epoch, hardware and versions in every line) and a Markdown table on stdout.

    PYTHONPATH=src python docs/results/compile/measure.py --out docs/results/compile/compile.jsonl
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from basisconv.experiment.data import synthetic_cifar
from basisconv.experiment.models import build_model
from basisconv.experiment.precision import effective_amp
from basisconv.experiment.provenance import hardware_info
from basisconv.experiment.train import TrainConfig, train


def one_run(compiled: bool, args, data, amp: bool) -> list[float]:
    torch.manual_seed(0)
    net = build_model("resnet18", width=args.width)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch, lr=0.2, warmup_epochs=0.2 * args.epochs,
                      label_smoothing=0.2, amp=amp, channels_last=True, eval_batch_size=500, compile=compiled)
    res = train(net, data, None, cfg, progress=False)
    return [h["epoch_time"] for h in res.history]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default="docs/results/compile/compile.jsonl")
    args = ap.parse_args()
    data = synthetic_cifar("train", n_per_class=args.images // 10)  # CIFAR-shaped uint8; the cost is the data's size
    amp = effective_amp(True, torch.device("cpu"))
    hw = hardware_info(torch.device("cpu"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    times = {False: [], True: []}
    with out.open("w") as f:
        for rnd in range(args.rounds):
            for compiled in (False, True):
                t0 = time.perf_counter()
                ep = one_run(compiled, args, data, amp)
                times[compiled].append(ep)
                for i, t in enumerate(ep, 1):
                    f.write(json.dumps({"round": rnd, "compiled": compiled, "epoch": i, "epoch_time": t,
                                        "ms_per_image": 1e3 * t / len(data[1]), "images": len(data[1]),
                                        "batch": args.batch, "width": args.width,
                                        "precision": "bf16 autocast" if amp else "fp32",
                                        "run_wall_s": time.perf_counter() - t0, "hardware": hw}) + "\n")
                f.flush()
                print(f"round {rnd} {'compiled' if compiled else 'eager'}: epochs " +
                      ", ".join(f"{t:.1f}" for t in ep) + " s", flush=True)
    first_c = statistics.median(r[0] for r in times[True])
    late_c = statistics.median(t for r in times[True] for t in r[1:])
    late_e = statistics.median(t for r in times[False] for t in r[1:])
    first_e = statistics.median(r[0] for r in times[False])
    cost, saving = first_c - late_c, late_e - late_c
    n = len(data[1])
    print(f"\n{hw['device_name']}, {hw['threads']} threads, torch {hw['torch']}, "
          f"{'bf16 autocast' if amp else 'fp32'}, width {args.width}, batch {args.batch}, {n:,} images per epoch, "
          f"medians of {args.rounds} rounds\n")
    print("| | eager | compiled |\n| --- | --- | --- |")
    print(f"| epoch 1 (s) | {first_e:.1f} | {first_c:.1f} |")
    print(f"| later epochs (s) | {late_e:.1f} | {late_c:.1f} |")
    print(f"| ms per image, later epochs | {1e3 * late_e / n:.2f} | {1e3 * late_c / n:.2f} |\n")
    if saving > 0:
        full = 45000 / n  # a cpu-full epoch in units of these epochs
        print(f"compile cost {cost:.1f} s; saving {saving:.2f} s per epoch of {n:,} images "
              f"({100 * saving / late_e:.1f} %); break-even after {cost / saving:.1f} such epochs, "
              f"{cost / (saving * full):.2f} cpu-full epochs of 45,000 images.")
    else:
        print(f"compile cost {cost:.1f} s and no saving per epoch ({-saving:.2f} s slower): compiling does not pay "
              "here at any length.")


if __name__ == "__main__":
    main()
