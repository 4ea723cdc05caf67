"""Training loop for the experiments of arXiv 2408.06024: baseline, basis layers from scratch, and the switch.

The paper trains basis models two ways; both are one ``TrainConfig``:

- from scratch (``switch_epoch=0``): the chosen convs are ``BasisConv2d`` with fresh weights from step 0;
- the cheap "skip"/switch schedule (``switch_epoch=s > 0``): train the full-rank model for ``s`` epochs, then
  ``convert`` the chosen layers, initialised from the current filters (``basis_init``, QR by default), and go on
  with the same learning-rate schedule and SGD momentum (carried over for every unchanged parameter).

SGD with momentum/Nesterov, weight decay, label smoothing; a one-cycle (linear up, linear down) or cosine schedule
with linear warm-up, stepped per batch. A checkpoint is written atomically after every epoch with model,
optimiser, schedule position and RNG state; re-running with the same config resumes from it and, on CPU, ends with
bit-identical weights to an uninterrupted run (batches depend only on seed and epoch, see ``loader.py``).

Under ``torchrun`` the same function trains data-parallel (``distributed.py``): ``batch_size`` stays the global
batch, split evenly over the ranks, gradients are averaged by ``DistributedDataParallel``, epoch metrics are summed
over ranks and only rank 0 writes the checkpoint. ``compile=True`` wraps the model in ``torch.compile`` (the
weights and checkpoints stay those of the plain module).
"""
from __future__ import annotations

import copy
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from basisconv.experiment import distributed as dist_
from basisconv.experiment.distributed import resolve_device
from basisconv.core.checks import check_choice
from basisconv.core.basis import COEFF_CHOICES, INIT_CHOICES, check_ratio
from basisconv.core.conv_guard import guard_convs
from basisconv.core.progress import bar as progress_bar
from basisconv.experiment.io import save_torch
from basisconv.experiment.loader import TensorLoader
from basisconv.experiment.precision import autocast, effective_amp
from basisconv.core.surgery import convert
from basisconv.core.switch import switch

SCHEDULES = ("onecycle", "cosine")


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or inf; raised at once so no diverged checkpoint or metric is written."""


def _positive_int(v, name):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")


def _non_negative(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 or math.isinf(v):
        raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")


@dataclass
class TrainConfig:
    """Everything that determines a training run (and so must match for a checkpoint to be resumed)."""
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1  # peak learning rate
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    schedule: str = "onecycle"
    warmup_epochs: float = 1.0
    seed: int = 0
    amp: bool = False  # bf16 autocast where the device supports it (CUDA, CPUs with avx512_bf16/amx); else fp32
    channels_last: bool = False
    eval_batch_size: int = 500
    basis_layers: Any = None  # None: no basis layers; "all" or a list of dotted names
    basis_ratio: Any = 0.5  # float or {name: ratio}
    basis_coeff: str = "reduced"
    basis_init: str = "qr"  # used at the switch; from scratch is always "random"
    switch_epoch: int = 0
    tta: bool = False  # evaluation averages the softmax of each image and of its mirror image (flip TTA)
    ema_decay: float = 0.0  # > 0: an EMA of the weights is what is evaluated and returned (see WeightEma); 0: off
    compile: bool = False  # torch.compile the training forward/backward (whether it pays: docs/results/compile)

    def __post_init__(self):
        _positive_int(self.epochs, "epochs")
        _positive_int(self.batch_size, "batch_size")
        _positive_int(self.eval_batch_size, "eval_batch_size")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not 0 < self.lr < math.inf:
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        for name in ("momentum", "weight_decay", "label_smoothing", "warmup_epochs"):
            _non_negative(getattr(self, name), name)
        if isinstance(self.ema_decay, bool) or not isinstance(self.ema_decay, (int, float)) \
                or not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be a number in [0, 1) (0: no EMA), got {self.ema_decay!r}")
        if not isinstance(self.tta, bool):
            raise ValueError(f"tta must be true or false, got {self.tta!r}")
        if self.label_smoothing >= 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs={self.warmup_epochs} exceeds epochs={self.epochs}")
        check_choice(self.schedule, SCHEDULES, "schedule")
        check_choice(self.basis_coeff, COEFF_CHOICES, "basis_coeff")
        check_choice(self.basis_init, INIT_CHOICES, "basis_init")
        if isinstance(self.basis_ratio, dict):
            for k, r in self.basis_ratio.items():
                check_ratio(r, f"basis_ratio[{k!r}]")
        else:
            check_ratio(self.basis_ratio, "basis_ratio")
        if isinstance(self.switch_epoch, bool) or not isinstance(self.switch_epoch, int) \
                or not 0 <= self.switch_epoch < self.epochs:
            raise ValueError(f"switch_epoch must be an int in [0, epochs={self.epochs}), got {self.switch_epoch!r}")
        if self.basis_layers is not None and not (self.basis_layers == "all" or isinstance(self.basis_layers, (list, tuple))):
            raise ValueError(f"basis_layers must be None, 'all' or a list of layer names, got {self.basis_layers!r}")
        if isinstance(self.basis_layers, (list, tuple)) and not self.basis_layers:
            raise ValueError("basis_layers is an empty list; use None for no basis layers")

    @property
    def uses_basis(self) -> bool:
        return self.basis_layers is not None


# The fields that make a basis run differ from its baseline; every other field equal means the two train the same
# model up to the switch epoch (``train(start_from=...)``).
BASIS_FIELDS = ("basis_layers", "basis_ratio", "basis_coeff", "basis_init", "switch_epoch")


class WeightEma:
    """An exponential moving average of a model's weights: parameters and floating buffers (BatchNorm statistics)
    are averaged after every optimiser step, integer buffers (BN's batch count) copied. The decay warms up as
    ``min(decay, (1 + t) / (10 + t))`` over the first ``t`` steps, so the average does not cling to the initial
    weights. The average is a separate module (eval mode, no gradients) with the model's structure and layout."""

    def __init__(self, model: nn.Module, decay: float):
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.steps = decay, 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        mine, theirs = self.module.state_dict(), model.state_dict()
        floats = [k for k, v in mine.items() if v.dtype.is_floating_point]
        torch._foreach_lerp_([mine[k] for k in floats], [theirs[k] for k in floats], 1 - d)  # e += (1-d)(m-e)
        for k, v in mine.items():
            if not v.dtype.is_floating_point:
                v.copy_(theirs[k])

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.steps = state["steps"]


def snapshot_path(checkpoint, epoch: int) -> Path:
    """Where ``train(snapshot_epochs=...)`` keeps the checkpoint of ``epoch`` next to ``checkpoint``."""
    ckpt = Path(checkpoint)
    return ckpt.with_name(f"{ckpt.stem}.e{epoch}{ckpt.suffix}")


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Multiplier of the peak lr at ``step``: linear warm-up, then linear (onecycle) or cosine decay to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 1.0 - t if schedule == "onecycle" else 0.5 * (1.0 + math.cos(math.pi * t))


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict] = field(default_factory=list)

    @property
    def train_time(self) -> float:
        return sum(h["epoch_time"] for h in self.history)


@torch.no_grad()
def evaluate(model: nn.Module, loader: TensorLoader, amp: bool = False, per_sample: bool = False,
             tta: bool = False) -> dict:
    """Mean cross-entropy and accuracy over every sample of ``loader`` (eval mode; the mode is restored).

    ``tta``: flip test-time augmentation, the prediction is the mean of the softmax of each image and of its
    horizontal mirror (the loss is the negative log of that mean). Under torchrun each rank evaluates its shard of
    ``loader`` and the sums are added over ranks. ``per_sample=True`` (single process) adds ``"correct"``: a bool
    tensor (N,) in loader order, for paired tests.
    """
    if per_sample and dist_.world_size() > 1:
        raise ValueError("per_sample evaluation is single-process only (each rank sees only its shard)")
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=loader.device, dtype=torch.float64)
    correct = torch.zeros((), device=loader.device, dtype=torch.int64)
    hits = []
    n = 0
    with autocast(loader.device, effective_amp(amp, loader.device, warn=False)):
        for x, y in loader:
            out = model(x).float()
            if tta:  # (B, classes) probabilities of the image and its mirror (W is the last dim), averaged
                prob = (out.softmax(1) + model(x.flip(3)).float().softmax(1)) / 2
                loss_sum += F.nll_loss(prob.clamp_min(1e-12).log(), y, reduction="sum")
                out = prob
            else:
                loss_sum += F.cross_entropy(out, y, reduction="sum")
            hit = out.argmax(1) == y
            correct += hit.sum()
            if per_sample:
                hits.append(hit.cpu())
            n += len(y)
    model.train(was_training)
    count = torch.tensor(n, device=loader.device, dtype=torch.int64)
    dist_.all_reduce_sum(loss_sum, correct, count)
    n = int(count.item())
    res = {"loss": loss_sum.item() / n, "acc": correct.item() / n, "n": n}
    if per_sample:
        res["correct"] = torch.cat(hits)
    return res


def _make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                           weight_decay=cfg.weight_decay)


def _wrap(model: nn.Module, cfg: TrainConfig, device) -> nn.Module:
    """What runs the training steps: ``model`` itself, in DDP under torchrun, compiled if asked.

    The plain module stays the owner of the weights (optimiser, checkpoints, switch surgery); the wrappers share them.
    """
    runner = model
    if dist_.world_size() > 1:
        from torch.nn.parallel import DistributedDataParallel
        runner = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        runner = torch.compile(runner)
    return runner


def _switch(model: nn.Module, opt: torch.optim.SGD, cfg: TrainConfig, init: str, memory_format):
    """The paper's switch (``core.switch``): convert the basis layers, keep the momentum of surviving parameters."""
    return switch(model, opt, cfg.basis_layers, ratio=cfg.basis_ratio, coeff=cfg.basis_coeff, init=init,
                  memory_format=memory_format)


def _check_finite(loss: torch.Tensor, distributed: bool, device) -> bool:
    finite = bool(torch.isfinite(loss))
    # under DDP every rank must stop at the same step, or the others wait forever in the next all-reduce
    return not dist_.all_reduce_flag(not finite, device) if distributed else finite


def train(model: nn.Module, train_data: tuple[torch.Tensor, torch.Tensor],
          val_data: tuple[torch.Tensor, torch.Tensor] | None, cfg: TrainConfig, *, device=None,
          checkpoint: str | os.PathLike | None = None, progress: bool | dict = True,
          on_epoch: Callable[[dict], None] | None = None, snapshot_epochs: tuple[int, ...] = (),
          start_from: str | os.PathLike | None = None) -> TrainResult:
    """Train ``model`` on uint8 ``train_data=(images, labels)``; validate on ``val_data`` after each epoch.

    ``checkpoint``: a file written after every epoch; if it exists and was written with the same config, training
    resumes after its last epoch. ``snapshot_epochs``: the checkpoints of these epochs are also kept, at
    ``snapshot_path(checkpoint, epoch)``. ``start_from``: a snapshot of a run whose config differs from ``cfg`` only
    in ``BASIS_FIELDS`` and which had no basis layers yet, taken at or before ``cfg.switch_epoch``: a switch run
    continues from it instead of training those epochs again. Up to the switch such a run is the same computation
    as its baseline (same seed, same batches, same model), so the result is bit-identical on CPU to training from
    step 0 (tested); it is used only when ``checkpoint`` holds nothing to resume. ``progress``: tqdm on/off, or a
    dict of tqdm kwargs (e.g. ``mininterval``). ``on_epoch`` gets each history row as soon as it exists.
    Returns the trained model (a new object if basis layers were introduced; the weight average if
    ``cfg.ema_decay > 0``) and the per-epoch history.
    """
    device = resolve_device(device)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    amp = effective_amp(cfg.amp, device)  # bf16 on CUDA and bf16-capable CPUs; fp32 (with a warning) elsewhere
    rank, world = dist_.rank(), dist_.world_size()
    distributed, main = world > 1, rank == 0
    torch.manual_seed(cfg.seed)  # same on every rank: from-scratch basis layers get identical weights everywhere
    model = model.to(device, memory_format=memory_format)
    guard_convs(model)  # oneDNN #6035: affected 1x1 stride-2 convs computed in an equivalent form (in place)
    shard = (rank, world)  # each rank takes an equal slice of every epoch; batch_size stays the global batch
    loader = TensorLoader(*train_data, dist_.shard_batch_size(cfg.batch_size, world), train=True, seed=cfg.seed,
                          device=device, channels_last=cfg.channels_last, shard=shard)
    val_loader = None if val_data is None else TensorLoader(*val_data, cfg.eval_batch_size, train=False,
                                                             device=device, channels_last=cfg.channels_last,
                                                             shard=shard)
    steps_per_epoch = len(loader)
    total_steps = cfg.epochs * steps_per_epoch
    warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)
    if cfg.uses_basis and cfg.switch_epoch == 0:
        model = convert(model, cfg.basis_layers, ratio=cfg.basis_ratio, coeff=cfg.basis_coeff, init="random")
        model = model.to(device, memory_format=memory_format)
    opt = _make_optimizer(model, cfg)
    ema = WeightEma(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    history: list[dict] = []
    start_epoch = 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    cfg_dict = asdict(cfg)
    state = None
    if ckpt is not None and ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        if state["config"] != cfg_dict:
            diff = sorted(k for k in cfg_dict if state["config"].get(k) != cfg_dict[k])
            raise ValueError(f"checkpoint {ckpt} was written with a different config (keys {diff}); "
                             "delete it or restore those values to resume")
    elif start_from is not None:
        state = torch.load(start_from, map_location=device, weights_only=True)
        _check_start(state, cfg_dict, start_from)
    if state is not None:
        start_epoch = state["epoch"]
        if cfg.uses_basis and 0 < cfg.switch_epoch < start_epoch:  # the switch epoch itself has run
            model, opt = _switch(model, opt, cfg, "random", memory_format)  # weights come from the file
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        history = list(state["history"])
        if ema is not None:
            ema = WeightEma(model, cfg.ema_decay)
            ema.load_state_dict(state["ema"])
    runner = _wrap(model, cfg, device)
    for epoch in range(start_epoch, cfg.epochs):
        if cfg.uses_basis and cfg.switch_epoch > 0 and epoch == cfg.switch_epoch:
            model, opt = _switch(model, opt, cfg, cfg.basis_init, memory_format)
            runner = _wrap(model, cfg, device)
            if ema is not None:  # the average starts afresh on the new parameters (warm-up included)
                ema = WeightEma(model, cfg.ema_decay)
        loader.set_epoch(epoch)
        model.train()
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        seen = 0
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        # on the console only (basisconv.core.progress), not in a notebook's outputs; rank 0 alone draws it
        bar = progress_bar(loader, progress=progress, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                           disable=not main)
        for i, (x, y) in enumerate(bar):
            step = epoch * steps_per_epoch + i
            lr = cfg.lr * lr_factor(step, total_steps, warmup_steps, cfg.schedule)
            for g in opt.param_groups:
                g["lr"] = lr
            with autocast(device, amp):
                out = runner(x)
                loss = F.cross_entropy(out.float(), y, label_smoothing=cfg.label_smoothing)
            # Checking every step costs a device sync on GPU, so there it is checked every 50 steps.
            if (device.type != "cuda" or i % 50 == 0 or i == steps_per_epoch - 1) \
                    and not _check_finite(loss, distributed, device):
                raise TrainingDiverged(f"loss became {loss.item()} at epoch {epoch + 1}, step {i + 1} "
                                       f"(lr={lr:.4g}); lower lr or check the data")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                ema.update(model)
            loss_sum += loss.detach() * len(y)
            correct += (out.detach().argmax(1) == y).sum()
            seen += len(y)
        if device.type == "cuda":
            torch.cuda.synchronize()
        epoch_time = time.perf_counter() - t0
        seen_t = torch.tensor(seen, device=device, dtype=torch.int64)
        dist_.all_reduce_sum(loss_sum, correct, seen_t)  # whole-epoch metrics over every rank's shard
        seen = int(seen_t.item())
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum.item() / seen, "train_acc": correct.item() / seen,
               "epoch_time": epoch_time, "images": seen, "images_per_s": seen / epoch_time, "processes": world,
               "basis": cfg.uses_basis and (epoch >= cfg.switch_epoch)}
        if val_loader is not None:
            t1 = time.perf_counter()
            ev = evaluate(model if ema is None else ema.module, val_loader, amp=amp, tta=cfg.tta)
            row.update(val_loss=ev["loss"], val_acc=ev["acc"], eval_time=time.perf_counter() - t1)
        history.append(row)
        if ckpt is not None and main:  # one writer; the other ranks wait at the barrier below
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            save_torch({"epoch": epoch + 1, "model": model.state_dict(), "optimizer": opt.state_dict(),
                        "scheduler": {"step": (epoch + 1) * steps_per_epoch, "total_steps": total_steps},
                        "rng": {"torch": torch.get_rng_state()}, "history": history, "config": cfg_dict,
                        "ema": None if ema is None else ema.state_dict()}, ckpt)
            if epoch + 1 in snapshot_epochs:
                shutil.copyfile(ckpt, snapshot_path(ckpt, epoch + 1))
        dist_.barrier()
        if on_epoch is not None:
            on_epoch(row)
    return TrainResult(model=model if ema is None else ema.module, history=history)


def _check_start(state: dict, cfg_dict: dict, path) -> None:
    """``train(start_from=path)``: the snapshot must be of this run's baseline, before this run's switch."""
    other = state["config"]
    diff = sorted(k for k in cfg_dict if k not in BASIS_FIELDS and other.get(k) != cfg_dict[k])
    if diff:
        raise ValueError(f"start_from {path} was written with a different training config (keys {diff}); only "
                         f"{', '.join(BASIS_FIELDS)} may differ")
    if other.get("basis_layers") is not None and other.get("switch_epoch", 0) < state["epoch"]:
        raise ValueError(f"start_from {path} already has basis layers (switched at epoch {other['switch_epoch']})")
    if cfg_dict["basis_layers"] is not None and not 0 < state["epoch"] <= cfg_dict["switch_epoch"]:
        raise ValueError(f"start_from {path} is of epoch {state['epoch']}, but a run that switches at epoch "
                         f"{cfg_dict['switch_epoch']} can only start from epochs 1..{cfg_dict['switch_epoch']} "
                         "(a scratch run, switch_epoch 0, has basis layers from step 0)")
