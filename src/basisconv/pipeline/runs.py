"""One training run of the arXiv 2408.06024 experiments, resumable and content-addressed: the unit of the
baseline and basis stages.

A run trains with ``train`` (checkpointing every epoch), evaluates val and test accuracy, and writes one JSON with
the metrics, the exact config, the data label and the hardware. Every file of a run is named by its key,

    key = digest(TrainConfig, model section, process count, inputs)      inputs = digest(data content, code)

(``basisconv.pipeline.keys``): a finished JSON of the same key is returned as it is, a checkpoint of the same key is
resumed (bit-identical on CPU), and files of any other key are never read, so a changed param, retrained input or
edited module always trains afresh. Files of other keys stay: switching a param back finds its finished run again,
and an interrupted run's checkpoint survives runs of other keys (another profile, an ablation) until its key comes
back and resumes it. A finished run deletes its own resume checkpoint (the ``.e<epoch>`` snapshots and weights
stay). Under torchrun every rank trains its shard and only rank 0 writes files.
"""
from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn as nn

from basisconv.experiment import distributed as dist_
from basisconv.core.counting import count_macs, count_params
from basisconv.experiment.io import read_json, save_torch, write_json
from basisconv.pipeline.keys import content_digest, digest
from basisconv.experiment.loader import TensorLoader
from basisconv.experiment.models import INPUT_SHAPE
from basisconv.experiment.provenance import hardware_info
from basisconv.experiment.train import TrainConfig, evaluate, train

KEY_LEN = 16


def run_key(cfg: TrainConfig, model_spec: dict, inputs: str, processes: int = 1, start: str | None = None) -> str:
    """The key of one run; ``inputs`` is the digest of its data content and code (see the module docstring);
    ``start``: the key of the baseline run a switch run continues from (``run_training(start=...)``)."""
    spec = {"config": asdict(cfg), "model": model_spec, "processes": processes, "inputs": inputs}
    return digest(spec if start is None else {**spec, "start": start}, n=KEY_LEN)


def run_files(run_dir, name: str, key: str) -> dict[str, Path]:
    # suffixes appended, not swapped in: a run name may hold a dot (``all_layers~r0.25@switch``), which
    # ``Path.with_suffix`` would take for a suffix, giving every seed of that run the same files
    base = f"{name}-{key}"
    return {k: Path(run_dir) / f"{base}{ext}" for k, ext in (("json", ".json"), ("ckpt", ".ckpt"), ("weights", ".pt"))}


def _publish_weights(src: Path, dst) -> None:
    """Copy the run's weights to ``dst`` (e.g. ``models/baseline.pt``) unless it already holds exactly them."""
    dst = Path(dst)
    if dst.is_file() and content_digest(dst) == content_digest(src):
        return
    tmp = dst.with_name(f".{dst.name}.tmp")
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, tmp)
    tmp.replace(dst)


def run_training(name: str, model: nn.Module, cfg: TrainConfig, data: dict, *, run_dir, model_spec: dict,
                 data_meta: dict, inputs: str, device=None, progress: bool | dict = True,
                 save_model: str | Path | None = None, extra: dict | None = None,
                 snapshot_epochs: tuple[int, ...] = (), start: dict | None = None, kept_dir=None,
                 force: bool = False) -> dict:
    """Train ``model`` (``data``: ``{"train", "val", "test"}`` uint8 tuples) and return its metrics dict.

    ``inputs``: digest of everything outside ``cfg`` and ``model_spec`` that determines the run (data content and
    code). Files: ``run_dir/<name>-<key>.{json,ckpt}``; ``save_model``: the final weights also go to
    ``<name>-<key>.pt`` and are copied to ``save_model``. ``snapshot_epochs``: checkpoints kept as
    ``<name>-<key>.e<epoch>.ckpt`` (a baseline's switch epoch, for its switch runs). ``start``: ``{"key", "file"}``
    of the baseline run a switch run continues from (``train(start_from=...)``); its key is part of this run's key,
    and when its snapshot file is missing the run trains from step 0 instead, to the same result. ``kept_dir``: a
    folder of committed run summaries (``stages.common.kept_dir``): a finished run's JSON is copied there, and a
    run found there under its key is returned without training (unless it must publish weights, which are not kept).
    A switch run whose start snapshot is missing calls ``start["ensure"]()`` (when given) to make it before training.
    ``force``: train even when a finished run of the key exists (to make its snapshots again; the caller checks the
    result equals the kept one).
    """
    key = run_key(cfg, model_spec, inputs, dist_.world_size(), None if start is None else start["key"])
    files = run_files(run_dir, name, key)
    kept = None if kept_dir is None else run_files(kept_dir, name, key)["json"]
    if not force and files["json"].is_file() and (save_model is None or files["weights"].is_file()):
        if save_model is not None and dist_.is_main():
            _publish_weights(files["weights"], save_model)
        if kept is not None and not kept.is_file() and dist_.is_main():
            write_json(kept, read_json(files["json"]))
        dist_.barrier()
        return read_json(files["json"])
    if not force and kept is not None and save_model is None and kept.is_file():
        dist_.barrier()
        return read_json(kept)
    device = dist_.resolve_device(device)
    if start is not None and not Path(start["file"]).is_file() and start.get("ensure") is not None:
        start["ensure"]()  # the snapshot of a baseline found finished (in the kept summaries): make it again
    start_file = None if start is None or not Path(start["file"]).is_file() else start["file"]
    res = train(model, data["train"], data["val"], cfg, device=device, checkpoint=files["ckpt"], progress=progress,
                snapshot_epochs=snapshot_epochs, start_from=start_file)
    test = evaluate(res.model, TensorLoader(*data["test"], cfg.eval_batch_size, train=False, device=device,
                                            channels_last=cfg.channels_last,
                                            shard=(dist_.rank(), dist_.world_size())), tta=cfg.tta)
    last = res.history[-1]
    metrics = {
        "name": name, "key": key, "inputs": inputs, "data": data_meta.get("label"), "seed": cfg.seed,
        "test_acc": test["acc"], "test_loss": test["loss"], "val_acc": last.get("val_acc"),
        "params": count_params(res.model), "macs": count_macs(res.model, (1, *INPUT_SHAPE)),
        "train_time": res.train_time, "epoch_time_mean": res.train_time / len(res.history),
        "epoch_times": [h["epoch_time"] for h in res.history], "epochs": cfg.epochs,
        "hardware": hardware_info(device), "processes": dist_.world_size(), "config": asdict(cfg),
        "model": model_spec, "history": res.history, "started_from": None if start_file is None else start["key"],
        **(extra or {}),
    }
    if not dist_.is_main():
        dist_.barrier()  # rank 0 writes; return once the files exist, so every rank can read them
        return metrics
    if save_model is not None:
        save_torch(res.model.state_dict(), files["weights"])
        _publish_weights(files["weights"], save_model)
    write_json(files["json"], metrics)  # last: a JSON on disk means every file of the run is complete
    if kept is not None:
        write_json(kept, metrics)
    files["ckpt"].unlink(missing_ok=True)  # finished: its JSON and weights are what is reused, not its resume state
    dist_.barrier()
    return metrics
