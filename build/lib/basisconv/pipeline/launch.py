"""Run a pipeline stage under ``torchrun`` (scale-out of the arXiv 2408.06024 experiments).

    torchrun --standalone --nproc_per_node=4 -m basisconv.pipeline.launch baseline      # DDP baseline training
    torchrun --standalone --nproc_per_node=4 -m basisconv.pipeline.launch basis         # every basis-stage run, DDP
    torchrun --standalone --nproc_per_node=4 -m basisconv.pipeline.launch sensitivity   # the sweep split over 4 workers
    torchrun --standalone --nproc_per_node=4 -m basisconv.pipeline.launch faithfulness  # retrainings split over 4 workers

Each worker calls the stage's own entry, ``basisconv.pipeline.stages.<name>.run``, which under torchrun does its share of
the work into the same content-addressed run files and resume logs as a single process; afterwards ``dvc repro``
(or the notebook) finds the work done under the same keys and only assembles tables and figures. Multi-node: the
same module with ``torchrun --nnodes=N --node_rank=i --rdzv-backend=c10d --rdzv-endpoint=HOST:PORT`` on every node,
with the repository (or at least ``models/`` and ``data/prepared``) on a shared filesystem.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import yaml

STAGES = ("baseline", "basis", "sensitivity", "faithfulness")
DDP_STAGES = ("baseline", "basis")  # one training split over processes; the others split independent jobs


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", help=f"one of: {', '.join(STAGES)}")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    if args.stage not in STAGES:
        ap.error(f"unknown stage {args.stage!r}; valid choices: {', '.join(STAGES)}")
    if not Path(args.params).is_file():
        ap.error(f"params file {args.params!r} not found (run from the repository root)")

    from basisconv.experiment import distributed as dist_
    from basisconv.pipeline import stages
    from basisconv.pipeline.layout import STAGES as LAYOUT
    from basisconv.pipeline.params import resolve
    given = yaml.safe_load(Path(args.params).read_text())
    P = resolve(**{k: given.get(k, {}) for k in LAYOUT[args.stage].params})
    module = stages.get(args.stage)
    if args.stage not in DDP_STAGES:  # independent workers, no process group: worker k takes every n-th job
        out = module.run(P, progress={"mininterval": 10.0})
        print(f"worker {dist_.env_rank()}/{dist_.env_world_size()}: {len(out['rows'])} rows on file")
        return
    dist_.init_from_env(P["train"]["device"])
    try:
        out = module.run(P, progress={"mininterval": 10.0})
        if dist_.is_main():
            n = 1 if args.stage == "baseline" else len(out["runs"])
            print(f"{args.stage}: {n} run(s) on {dist_.world_size()} process(es)")
    finally:
        dist_.destroy()


if __name__ == "__main__":
    main()
