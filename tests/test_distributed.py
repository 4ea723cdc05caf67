"""Scale-out and robustness: torchrun DDP training, split sensitivity sweeps, resume after a real kill."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from basisconv.experiment.train import TrainConfig
from basisconv.experiment.models import build_model
from basisconv.experiment.data import synthetic_cifar
from basisconv.experiment.train import train
from basisconv.experiment import distributed as dist_
from basisconv.experiment.data import prepare
from basisconv.experiment.io import read_jsonl
from basisconv.pipeline.layout import PREPARED
from basisconv.pipeline.params import compose
from basisconv.core.sensitivity import ProxyConfig, layer_sensitivity
from basisconv.experiment import search
from basisconv.pipeline.stages.sensitivity import sort_rows

ROOT = Path(__file__).resolve().parents[1]


def _env():
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    return env


def _workspace(tmp_path: Path, **train) -> Path:
    """A minimal pipeline workspace: the schema, a params.yaml (smoke profile) and prepared synthetic data."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "paper.yaml").write_text((ROOT / "profiles" / "paper.yaml").read_text())
    p = compose("smoke", profile_dir=ROOT / "profiles")
    p["train"].update(threads=1, **train)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    prepare("synthetic", tmp_path / PREPARED, val_size=p["data"]["val_size"],
            synthetic_per_class=p["data"]["synthetic_per_class"])
    return tmp_path


@pytest.mark.timeout(300)  # about 10 s; the torchrun subprocess has its own, shorter, timeout
def test_torchrun_two_cpu_processes(tmp_path):
    """2 gloo processes: the epoch is covered once in total, the loss falls, rank 0 alone writes one checkpoint."""
    ws = _workspace(tmp_path, epochs=3, batch_size=100, lr=0.05)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "basisconv.pipeline.launch", "baseline"]
    run = subprocess.run(cmd, cwd=ws, env=_env(), capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "on 2 process(es)" in run.stdout
    run_dir = ws / "models" / "runs" / "baseline"
    names = sorted(p.name for p in run_dir.iterdir())
    # the snapshot at the switch epoch the switch variants start from (``<stem>.e<epoch>.ckpt``), and the rest
    from basisconv.pipeline.variants import snapshot_epochs
    epochs = snapshot_epochs(yaml.safe_load((ws / "params.yaml").read_text())["basis"])
    snaps = [f for f in names if any(f.endswith(f".e{s}.ckpt") for s in epochs)]
    files = [f for f in names if f not in snaps]
    assert len(snaps) == len(epochs) and all(f.startswith("baseline_s0-") for f in snaps)
    assert [f.split("-")[0] for f in files] == ["baseline_s0"] * 2 and [f.rsplit(".")[-1] for f in files] == \
        ["json", "pt"]  # one run, one key: metrics, weights (a finished run drops its resume checkpoint)
    assert (ws / "models" / "baseline.pt").is_file()
    m = json.loads((run_dir / files[0]).read_text())
    n_train = len(torch.load(ws / "data" / "prepared" / "train.pt", weights_only=True)["labels"])
    assert m["processes"] == 2
    assert [h["images"] for h in m["history"]] == [n_train] * 3  # both shards together: the epoch once
    assert all(h["processes"] == 2 for h in m["history"])
    assert m["history"][-1]["train_loss"] < m["history"][0]["train_loss"]
    assert len(m["history"]) == 3 and [torch.load(run_dir / f, weights_only=True)["epoch"] for f in snaps] == \
        list(epochs)


def test_shards_of_one_training_epoch_partition_it():
    """What each DDP rank's loader yields: disjoint shards whose union is the epoch, for several world sizes."""
    from basisconv.experiment.loader import TensorLoader
    x = torch.zeros(120, 3, 32, 32, dtype=torch.uint8)
    ids = torch.arange(120)
    for world in (1, 2, 3, 4):
        bs = dist_.shard_batch_size(12, world)
        seen = [torch.cat([y for _, y in TensorLoader(x, ids, bs, seed=1, shard=(r, world))]) for r in range(world)]
        allseen = torch.cat(seen)
        assert len(allseen) == 120 and len(set(allseen.tolist())) == 120
    with pytest.raises(ValueError, match="batch_size=10 does not split over 3 processes; use a multiple of 3"):
        dist_.shard_batch_size(10, 3)


def test_single_process_helpers_are_no_ops():
    assert (dist_.rank(), dist_.world_size(), dist_.is_main()) == (0, 1, True)
    t = torch.ones(3)
    dist_.all_reduce_sum(t)
    assert t.tolist() == [1, 1, 1] and dist_.all_reduce_flag(True, "cpu") is True
    with pytest.raises(ValueError, match="unknown backend 'mpi'; valid choices: gloo, nccl"):
        dist_.init_from_env("cpu", backend="mpi")
    with pytest.raises(ValueError, match="unknown device 'meta'; valid choices: auto, cpu, cuda"):
        dist_.init_from_env("meta")


def test_split_sweep_merges_to_the_single_worker_rows(tmp_path):
    torch.manual_seed(0)
    model = build_model("resnet18", width=4)
    tr, va = synthetic_cifar("train", n_per_class=10), synthetic_cifar("val", n_per_class=5)
    layers = ["layer1.0.conv1", "layer2.1.conv2", "layer3.0.conv1", "layer4.1.conv2"]
    cfg = ProxyConfig(bn_batches=1, finetune_steps=2)
    kw = dict(progress=False)
    data = (search.train_batches(tr, 20, seed=cfg.seed), search.correctness(va), (1, 3, 32, 32))
    single = layer_sensitivity(model, layers, [0.25, 0.5], ["zero_shot", "finetune"], *data, cfg, **kw)
    files = []
    for k in range(3):  # three workers, each writing its own resume file as the pipeline's workers do
        f = tmp_path / f"partial-x.{k}of3.jsonl"
        layer_sensitivity(model, layers, [0.25, 0.5], ["zero_shot", "finetune"], *data, cfg, shard=(k, 3),
                          on_row=lambda r, f=f: f.open("a").write(json.dumps(r.to_dict()) + "\n"), **kw)
        files.append(f)
    with open(files[1], "a") as f:
        f.write('{"layer": "layer1.0.conv1", "ra')  # a worker killed mid-line: that row is measured again later
    merged = sort_rows(read_jsonl(files, lambda r: (r["layer"], r["ratio"], r["proxy"])), layers)

    def strip(rows):  # seconds are wall times, not results
        return [{k: v for k, v in r.items() if k not in ("seconds", "time_saved_ms")} for r in rows]
    assert strip(merged) == strip(sort_rows(single, layers))
    with pytest.raises(ValueError, match=r"shard must be \(k, n\) with 0 <= k < n, got \(3, 3\)"):
        layer_sensitivity(model, layers, [0.5], ["zero_shot"], *data, cfg, shard=(3, 3), **kw)


_KILLED_WORKER = """
import sys, torch
sys.path.insert(0, {src!r})
from basisconv.experiment.train import TrainConfig
from basisconv.experiment.models import build_model
from basisconv.experiment.data import synthetic_cifar
from basisconv.experiment.train import train
torch.set_num_threads(1)
torch.manual_seed(0)
cfg = TrainConfig(**{cfg!r})
data = synthetic_cifar("train", n_per_class=60), synthetic_cifar("val", n_per_class=10)
train(build_model("resnet18", width=4), *data, cfg, progress=False, checkpoint={ckpt!r})
"""


@pytest.mark.timeout(400)  # about 8 s; the wait for the first checkpoint alone may take up to 300 s
@pytest.mark.parametrize("basis", [False, True])
def test_kill_mid_epoch_then_resume_matches_uninterrupted(tmp_path, basis):
    """SIGKILL a training process during an epoch, re-run: the same final weights and metrics as no kill."""
    cfg = dict(epochs=4, batch_size=50, lr=0.05, warmup_epochs=0.5, eval_batch_size=100, seed=3)
    if basis:
        cfg.update(basis_layers=["layer2.0.conv1", "layer3.1.conv2"], switch_epoch=1)
    ckpt = tmp_path / "run.ckpt"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WORKER.format(src=str(ROOT / "src"), cfg=cfg,
                                                                        ckpt=str(ckpt))], env=_env())
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if ckpt.is_file():
            break
        time.sleep(0.02)
    time.sleep(0.3)  # into the 2nd epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the worker ended before it could be killed"
    killed_at = torch.load(ckpt, weights_only=True)["epoch"]
    assert 1 <= killed_at < cfg["epochs"]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the killed worker's thread count: same reduction order, bit-identical results
    try:
        data = synthetic_cifar("train", n_per_class=60), synthetic_cifar("val", n_per_class=10)
        torch.manual_seed(0)
        resumed = train(build_model("resnet18", width=4), *data, TrainConfig(**cfg), progress=False, checkpoint=ckpt)
        torch.manual_seed(0)
        full = train(build_model("resnet18", width=4), *data, TrainConfig(**cfg), progress=False)
    finally:
        torch.set_num_threads(threads)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    keys = ("train_loss", "train_acc", "val_loss", "val_acc")
    assert [[h[k] for k in keys] for h in full.history] == [[h[k] for k in keys] for h in resumed.history]


def test_same_seed_same_metrics():
    """Determinism on CPU: two runs with the same seed and config give identical metrics."""
    data = synthetic_cifar("train", n_per_class=20), synthetic_cifar("val", n_per_class=5)
    cfg = TrainConfig(epochs=2, batch_size=50, lr=0.05, warmup_epochs=0.5, seed=7)
    out = []
    for _ in range(2):
        torch.manual_seed(0)
        h = train(build_model("resnet18", width=4), *data, cfg, progress=False).history
        out.append([(r["train_loss"], r["val_acc"], r["val_loss"]) for r in h])
    assert out[0] == out[1]
