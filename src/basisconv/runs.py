"""One training run of the arXiv 2408.06024 experiments, resumable and recorded: the unit of baseline and basis stages.

A run trains with ``train`` (checkpointing every epoch), evaluates val and test accuracy, and writes one JSON with
the metrics, the exact config, the data label and the hardware. A finished JSON whose ``key`` (config + model +
data) matches is reused, so a re-run of a killed stage redoes only unfinished runs; a checkpoint of another config
is discarded instead of resumed. Under torchrun every rank trains its shard and only rank 0 writes files.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn as nn

from . import distributed as dist_
from .bench import hardware_info
from .counting import count_macs, count_params
from .io import read_json, write_json
from .loader import TensorLoader
from .train import TrainConfig, evaluate, resolve_device, train


def run_key(cfg: TrainConfig, model_spec: dict, data_meta: dict) -> str:
    blob = json.dumps({"config": asdict(cfg), "model": model_spec, "data": data_meta}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_training(name: str, model: nn.Module, cfg: TrainConfig, data: dict, *, run_dir, model_spec: dict,
                 data_meta: dict, device=None, progress: bool | dict = True, save_model: str | Path | None = None,
                 extra: dict | None = None) -> dict:
    """Train ``model`` (``data``: ``{"train", "val", "test"}`` uint8 tuples) and return its metrics dict.

    Files: ``run_dir/name.json`` (metrics), ``run_dir/name.ckpt`` (resume checkpoint). ``save_model``: also write
    the final weights there.
    """
    run_dir = Path(run_dir)
    key = run_key(cfg, model_spec, data_meta)
    out, ckpt = run_dir / f"{name}.json", run_dir / f"{name}.ckpt"
    if out.is_file():
        done = read_json(out)
        if done.get("key") == key and (save_model is None or Path(save_model).is_file()):
            return done
    if dist_.is_main() and ckpt.is_file() and torch.load(ckpt, weights_only=True).get("config") != asdict(cfg):
        ckpt.unlink()  # written by another config (a changed param): start over rather than resume
    dist_.barrier()  # no rank may look at the checkpoint before rank 0 has decided whether it stays
    device = resolve_device(device)
    res = train(model, data["train"], data["val"], cfg, device=device, checkpoint=ckpt, progress=progress)
    test = evaluate(res.model, TensorLoader(*data["test"], cfg.eval_batch_size, train=False, device=device,
                                            channels_last=cfg.channels_last,
                                            shard=(dist_.rank(), dist_.world_size())))
    last = res.history[-1]
    metrics = {
        "name": name, "key": key, "data": data_meta.get("label"), "seed": cfg.seed,
        "test_acc": test["acc"], "test_loss": test["loss"], "val_acc": last.get("val_acc"),
        "params": count_params(res.model), "macs": count_macs(res.model, (1, 3, 32, 32)),
        "train_time": res.train_time, "epoch_time_mean": res.train_time / len(res.history),
        "epoch_times": [h["epoch_time"] for h in res.history], "epochs": cfg.epochs,
        "hardware": hardware_info(device), "processes": dist_.world_size(), "config": asdict(cfg),
        "model": model_spec, "history": res.history, **(extra or {}),
    }
    if not dist_.is_main():
        dist_.barrier()  # rank 0 writes; return once the files exist, so every rank can read them
        return metrics
    if save_model is not None:
        Path(save_model).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(save_model).with_suffix(".tmp")
        torch.save(res.model.state_dict(), tmp)
        tmp.replace(save_model)
    write_json(out, metrics)
    dist_.barrier()
    return metrics
