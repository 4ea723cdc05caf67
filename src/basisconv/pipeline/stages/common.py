"""What every training stage of the pipeline shares (arXiv 2408.06024 replication): runtime setup, the prepared
splits, the resolved ``train`` section, content-addressed keys and the torchrun launcher.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import yaml

from basisconv.experiment import distributed as dist_
from basisconv.experiment.data import load_prepared
from basisconv.experiment.io import read_json, write_json
from basisconv.pipeline.keys import content_digest, stage_inputs
from basisconv.pipeline.layout import PREPARED, STAGES
from basisconv.experiment.precision import bf16_supported, effective_amp
from basisconv.experiment.provenance import numerics

KEPT = "kept"  # committed summaries of finished runs and rows (``kept_dir``)


def setup(train: dict, threads: int | None = None) -> torch.device:
    """Threads (``train.threads``, or ``threads`` when given) and the device; returns the device. Says so when
    ``train.amp`` asks for bf16 on a device without it (the stages then train in fp32)."""
    n = train.get("threads") if threads is None else threads
    if n:
        torch.set_num_threads(int(n))
    device = dist_.resolve_device(train.get("device", "auto"))
    if train.get("amp") and not bf16_supported(device):
        print(f"note: train.amp asks for bf16 autocast, but {device} has no native bf16 support: training in fp32")
    return device


def resolved_train(train: dict) -> dict:
    """The ``train`` section with ``amp`` replaced by the precision that will actually run on its device
    (``precision.effective_amp``): what every TrainConfig and resume key is built from, so a run's key names the
    dtype it ran in, not the one asked for."""
    device = dist_.resolve_device(train.get("device", "auto"))
    return {**train, "amp": effective_amp(bool(train.get("amp")), device, warn=False)}


def load_splits() -> tuple[dict, dict]:
    """The three prepared splits and the data metadata (whose ``label`` goes into every result)."""
    return ({s: load_prepared(PREPARED, s) for s in ("train", "val", "test")},
            read_json(Path(PREPARED) / "meta.json"))


def data_digest() -> str:
    """Content digest of the prepared splits: every trained run's key includes it."""
    return content_digest(PREPARED)


def inputs(stage: str, P: dict, sections=None, files=None) -> dict:
    """``keys.stage_inputs`` of ``stage``: its params sections (or ``sections``), the content of its declared
    input files (or ``files``) and the computation of its module closure, with the machine's ``numerics`` (what
    else decides a computation's floating-point results)."""
    L = STAGES[stage]
    device = dist_.resolve_device(P.get("train", {}).get("device", "auto"))
    return {**stage_inputs(P, L.params if sections is None else sections,
                           L.deps.values() if files is None else files, L.module), "numerics": numerics(device)}


def kept_dir(stage: str, P: dict) -> Path:
    """Where ``stage`` keeps a copy of every finished run's and measured row's small summary, by profile
    (``kept/<profile>/<stage>``): committed as a long run goes, so that a lost work tree costs only the work in
    progress (``runs.run_training`` and ``resume.resume_log`` read it back by key)."""
    return Path(KEPT) / P["profile"] / stage


def write_provenance(stage: str, record: dict) -> None:
    """``results/provenance/<stage>.json``: the key and inputs each output of the stage was computed from."""
    write_json(STAGES[stage]["provenance"], {"stage": stage, **record})


def under_torchrun() -> bool:
    return dist_.env_world_size() > 1


def worker_shard() -> tuple[int, int]:
    """``(k, n)``: this worker's part of a split measurement under torchrun, else the whole ``(0, 1)``."""
    return (dist_.env_rank(), dist_.env_world_size()) if under_torchrun() else (0, 1)


def launch(stage: str, processes: int, P: dict) -> None:
    """Run ``stage``'s ``run`` under ``torchrun --standalone`` with ``processes`` workers on this machine, with
    exactly the params ``P`` (written to a temporary file). The caller then finds the work done (same keys)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=".", prefix=".launch-", delete=False) as f:
        yaml.safe_dump(P, f)
    try:
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        f"--nproc_per_node={processes}", "-m", "basisconv.pipeline.launch", stage, "--params", f.name],
                       check=True)
    finally:
        Path(f.name).unlink(missing_ok=True)
