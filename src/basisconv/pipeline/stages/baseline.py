"""Stage ``baseline``: the full-rank CIFAR ResNet the paper compares against (arXiv 2408.06024, Experiments).

Seed ``train.seeds[0]`` with the schedule of ``train`` gives ``models/baseline.pt``, the model the sensitivity
search starts from. The run is content-addressed (``basisconv.pipeline.runs``): its key hashes the TrainConfig, the model
section, the content of ``data/prepared`` and the source of this module's import closure, so a changed param,
split or trainer retrains, and an unchanged one returns the finished run (or resumes its checkpoint).
"""
from __future__ import annotations

import pandas as pd
import torch

from basisconv.experiment import distributed as dist_
from basisconv.experiment import precision
from basisconv.experiment.io import save_torch, write_frame, write_json, write_metrics
from basisconv.experiment.train import snapshot_path
from basisconv.pipeline.keys import digest
from basisconv.pipeline.layout import STAGES
from basisconv.experiment.models import build_model
from basisconv.pipeline.runs import run_files, run_training
from basisconv.pipeline import variants
from basisconv.pipeline.stages import common, training

L = STAGES["baseline"]
SUMMARY_KEYS = ("key", "data", "seed", "test_acc", "val_acc", "params", "macs", "train_time", "epoch_time_mean",
                "epoch_times", "epochs", "hardware", "history")


def train_run(P: dict, D: dict, meta: dict, inputs: dict, device, progress=True) -> dict:
    """The baseline training of seed ``train.seeds[0]`` (the run file of the basis stage's first baseline seed)."""
    seed = P["train"]["seeds"][0]
    cfg = training.train_config(P["train"], seed=seed)
    torch.manual_seed(seed)
    net = build_model(P["model"]["arch"], width=P["model"]["width"])
    # the basis stage's switch and late runs of this seed continue from its checkpoints at their epochs
    m = run_training(f"baseline_s{seed}", net, cfg, D, run_dir=L["runs"], model_spec=P["model"], data_meta=meta,
                     inputs=digest(inputs["inputs"], inputs["code"], inputs["numerics"]), device=device,
                     progress=progress, save_model=L["model"], snapshot_epochs=variants.snapshot_epochs(P["basis"]),
                     kept_dir=common.kept_dir("baseline", P))
    if dist_.is_main():  # the model the training schedules' selection is searched on: its weights at the switch
        snap = snapshot_path(run_files(L["runs"], f"baseline_s{seed}", m["key"])["ckpt"], P["basis"]["switch_epoch"])
        if not snap.is_file():
            raise FileNotFoundError(f"{snap}: the baseline's checkpoint at basis.switch_epoch is gone (its run was "
                                    f"found finished); delete {run_files(L['runs'], f'baseline_s{seed}', m['key'])['json']}"
                                    " to train it again")
        # reproducible bytes: the same weights write the same file, so nothing downstream re-runs
        save_torch(torch.load(snap, map_location="cpu", weights_only=True)["model"], L["switch_model"])
    dist_.barrier()
    return m


def run(P: dict, progress=True) -> dict:
    """Train (or find) the baseline; write its metrics and history. Returns ``{"metrics", "history"}``."""
    device = common.setup(P["train"])
    if P["train"]["processes"] > 1 and not common.under_torchrun():
        common.launch("baseline", P["train"]["processes"], P)  # data-parallel; found finished below
    D, meta = common.load_splits()
    inputs = common.inputs("baseline", P)
    m = train_run(P, D, meta, inputs, device, progress)
    if common.under_torchrun():
        return {"metrics": m}
    summary = {k: m[k] for k in SUMMARY_KEYS}
    summary.update(profile=P["profile"], params_resolved=P, precision=precision.label(m["config"]["amp"]))
    write_json(L["summary"], summary)
    write_metrics(L["metrics"], {"acc": 100 * m["test_acc"]})  # test accuracy in %
    hist = pd.DataFrame(m["history"])
    write_frame(L["history"], hist)
    common.write_provenance("baseline", {"key": m["key"], **inputs})
    return {"metrics": m, "history": hist, "data": meta}
