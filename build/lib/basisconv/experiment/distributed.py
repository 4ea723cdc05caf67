"""Data-parallel training for the experiments of arXiv 2408.06024: process groups under ``torchrun``.

The paper's runs (baseline, basis variants, fine-tunes) are single-model trainings; scaling them out is plain data
parallelism. ``torchrun`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` and a rendezvous address; ``init_from_env``
joins the group (``nccl`` on GPU, ``gloo`` on CPU) and every helper here degrades to a no-op in a single process,
so the trainer has one code path. The global batch is split across ranks (``TensorLoader(shard=...)``), gradients
are averaged by ``DistributedDataParallel``, epoch metrics are summed with ``all_reduce``, and only rank 0 writes
files. Commands: see the README section "Scale-out".
"""
from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist

BACKENDS = ("gloo", "nccl")


def env_world_size() -> int:
    """``WORLD_SIZE`` as set by torchrun (1 outside it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def env_rank() -> int:
    """``RANK`` as set by torchrun (0 outside it): a worker's index in a split measurement without a process group."""
    return int(os.environ.get("RANK", "0"))


def resolve_device(device="auto") -> torch.device:
    """The device to run on, the one place that decides it: ``auto``/``None`` is CUDA when present, else CPU; under
    torchrun each rank takes GPU ``LOCAL_RANK``. ``cpu``, ``cuda``, ``cuda:1`` or a ``torch.device`` as given."""
    if isinstance(device, torch.device):
        return device
    kind = ("cuda" if torch.cuda.is_available() else "cpu") if device in (None, "auto") else str(device)
    if kind.split(":")[0] not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; valid choices: auto, cpu, cuda")
    if kind == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(kind)


def init_from_env(device="auto", backend: str | None = None, timeout_s: float = 1800) -> torch.device:
    """Join the torchrun process group if there is one; returns this rank's device (``resolve_device``).

    ``backend=None`` picks ``nccl`` for CUDA and ``gloo`` for CPU.
    """
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid choices: {', '.join(BACKENDS)}")
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if env_world_size() > 1 and not is_distributed():
        dist.init_process_group(backend or ("nccl" if dev.type == "cuda" else "gloo"), timeout=timedelta(seconds=timeout_s))
    return dev


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Rank 0 (or a single process): the one that writes checkpoints, metrics and progress bars."""
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_sum(*tensors: torch.Tensor) -> None:
    """In-place sum over ranks (no-op in one process). Tensors must live on the group's device."""
    if is_distributed():
        for t in tensors:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)


def all_reduce_flag(flag: bool, device) -> bool:
    """True on every rank if it is true on any rank (so all ranks stop together, not one of them hanging)."""
    if not is_distributed():
        return flag
    t = torch.tensor(int(flag), device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def shard_batch_size(batch_size: int, world: int) -> int:
    """Per-rank batch of a global ``batch_size``; refuses sizes that do not split evenly (unequal steps hang DDP)."""
    if batch_size % world:
        raise ValueError(f"batch_size={batch_size} does not split over {world} processes; use a multiple of {world}")
    return batch_size // world


def destroy() -> None:
    if is_distributed():
        dist.destroy_process_group()
