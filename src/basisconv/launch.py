"""Run a pipeline stage's heavy work under ``torchrun`` (scale-out of the arXiv 2408.06024 experiments).

    torchrun --standalone --nproc_per_node=4 -m basisconv.launch baseline      # DDP baseline training
    torchrun --standalone --nproc_per_node=4 -m basisconv.launch basis         # every basis-stage run, DDP
    torchrun --standalone --nproc_per_node=4 -m basisconv.launch sensitivity   # the sweep split over 4 workers
    torchrun --standalone --nproc_per_node=4 -m basisconv.launch faithfulness  # retrainings split over 4 workers

The same functions as the notebooks (``basisconv.stage``) produce the same run files under ``models/runs/``;
afterwards ``dvc repro`` finds them finished (same config keys) and only assembles tables and figures. Multi-node:
the same module with ``torchrun --nnodes=N --node_rank=i --rdzv-backend=c10d --rdzv-endpoint=HOST:PORT`` on every
node, with the repository (or at least ``models/`` and ``data/prepared``) on a shared filesystem.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import yaml

STAGES = ("baseline", "basis", "sensitivity", "faithfulness")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", help=f"one of: {', '.join(STAGES)}")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    if args.stage not in STAGES:
        ap.error(f"unknown stage {args.stage!r}; valid choices: {', '.join(STAGES)}")
    if not Path(args.params).is_file():
        ap.error(f"params file {args.params!r} not found (run from the repository root)")

    from . import distributed as dist_
    from . import stage
    from .io import read_json
    given = yaml.safe_load(Path(args.params).read_text())
    P = stage.params(**{k: given.get(k, {}) for k in ("data", "model", "train", "sensitivity", "basis",
                                                      "faithfulness")})
    stage.setup(P["train"])  # threads
    progress = stage.progress(10.0)
    if args.stage in ("sensitivity", "faithfulness"):
        # independent workers, no process group: worker k measures every n-th job into its own resume file
        k, n = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        device = _local_device(P["train"])
        D, meta = stage.load_splits(P["data"]["prepared"])
        if args.stage == "sensitivity":
            net, layers, val = stage.sensitivity_setup(P, D)
            rows = stage.sensitivity_sweep(P, net, layers, D, val, meta, device, shard=(k, n), progress=progress)
        else:
            rows = stage.faithfulness_measure(P, stage.faithfulness_setup(P, D), D, meta, device,
                                              shard=(k, n), progress=progress)
        print(f"worker {k}/{n}: {len(rows)} rows on file")
        return
    device = dist_.init_from_env(P["train"]["device"])
    try:
        D, meta = stage.load_splits(P["data"]["prepared"])
        if args.stage == "baseline":
            m = stage.baseline_run(P, D, meta, device, progress=progress)
            if dist_.is_main():
                print(f"baseline: test acc {m['test_acc']:.4f} on {dist_.world_size()} process(es)")
        else:
            plan = stage.basis_plan(P["basis"], read_json("results/selection.json"))
            runs = stage.basis_runs(P, plan, D, meta, device, baseline=None, progress=progress)
            if dist_.is_main():
                print(f"basis: {len(runs)} runs on {dist_.world_size()} process(es)")
    finally:
        dist_.destroy()


def _local_device(train: dict):
    """One GPU per worker (``LOCAL_RANK``) when CUDA is there and the device is auto; else the configured device."""
    import torch
    from .train import resolve_device
    if train["device"] == "auto" and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return resolve_device(train["device"])


if __name__ == "__main__":
    main()
