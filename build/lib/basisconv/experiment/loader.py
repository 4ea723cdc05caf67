"""Tensor-resident CIFAR batches: seeded ``randperm`` slices with batched crop and flip (airbench's CifarLoader).

The experiments of arXiv 2408.06024 time training; a Python ``DataLoader`` with per-image PIL transforms costs
more than a small ResNet's step on CPU and starves a GPU. Here the uint8 dataset sits on the training device and
each batch is one gather: random crop with zero padding 4 and horizontal flip are done for the whole batch with
tensor indexing, then conversion to float and normalisation. Batch order and augmentation depend only on
``(seed, epoch)``, so a resumed run sees exactly the batches an uninterrupted one would.
"""
from __future__ import annotations

import torch

from basisconv.experiment.data import MEAN, STD


class TensorLoader:
    """Iterate ``(x float (B, 3, 32, 32) normalised, y int64 (B,))`` batches over in-memory uint8 images.

    ``train=True``: shuffled each epoch, augmented, last partial batch dropped (``drop_last``) so every step has
    the same shape. ``train=False``: fixed order, no augmentation, every sample once.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, *, train: bool = True,
                 seed: int = 0, device="cpu", mean=MEAN, std=STD, pad: int = 4, drop_last: bool | None = None,
                 channels_last: bool = False, dtype=torch.float32, shard: tuple[int, int] = (0, 1)):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.device = torch.device(device)
        self.images = images.to(self.device)  # uint8 on device: 4x smaller than float, converted per batch
        self.labels = labels.to(self.device)
        self.batch_size, self.train, self.seed, self.pad = batch_size, train, seed, pad
        self.drop_last = train if drop_last is None else drop_last
        self.channels_last, self.dtype = channels_last, dtype
        self.rank, self.world = shard
        self.mean = torch.tensor(mean, device=self.device, dtype=dtype).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=self.device, dtype=dtype).view(1, -1, 1, 1) * 255
        self.epoch = 0
        if len(self) == 0:
            raise ValueError(f"batch_size={batch_size} leaves no batch for {len(images)} samples "
                             f"over {self.world} worker(s) with drop_last={self.drop_last}")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _per_worker(self) -> int:
        return len(self.images) // self.world if self.train else -(-len(self.images) // self.world)

    def __len__(self) -> int:
        n = self._per_worker()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self) -> torch.Tensor:
        n = len(self.images)
        if not self.train:
            idx = torch.arange(n, device=self.device)
            return idx[self.rank::self.world]
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        # The permutation is drawn on CPU so it is identical on every device and every worker; each worker then
        # takes an equal, disjoint slice (sharding for data parallel training).
        per = n // self.world
        return torch.randperm(n, generator=g)[self.rank * per:(self.rank + 1) * per].to(self.device)

    def augment(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Batched random crop (zero pad ``pad``) and horizontal flip of uint8 ``x`` (B, C, H, W)."""
        b, c, h, w = x.shape
        p = self.pad
        padded = torch.nn.functional.pad(x, (p, p, p, p))  # (B, C, H+2p, W+2p)
        dy, dx = torch.randint(0, 2 * p + 1, (2, b), generator=g).to(x.device)
        flip = (torch.rand(b, generator=g) < 0.5).to(x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (B, 1, H, 1)
        cols = dx[:, None] + torch.arange(w, device=x.device)  # (B, W)
        cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]  # flipping = reversed columns
        return padded[torch.arange(b, device=x.device)[:, None, None, None],
                      torch.arange(c, device=x.device)[None, :, None, None], rows, cols]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.to(self.dtype) - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def __iter__(self):
        order = self._order()
        # crops and flips differ per rank (rank 0's stream is the single-process one)
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch + 7919 * (self.rank + 1))
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x, y = self.images[idx], self.labels[idx]
            if self.train:
                x = self.augment(x, g)
            yield self.normalize(x), y
