"""CIFAR-10 as uint8 tensors: fetch (URL or local path, md5-checked), load, and a synthetic stand-in.

The paper's experiments (arXiv 2408.06024, Sec. Experiments) train CIFAR ResNets on CIFAR-10. Images are kept as
``uint8 (N, 3, 32, 32)`` tensors so a whole split fits on the training device (150 MB for the train set) and
batches are slices, not a Python DataLoader (see ``loader.py``). Model selection uses ``val``, a stratified split
carved deterministically from the training set; ``test`` is only for the final numbers.

The synthetic source is a small learnable CIFAR-shaped problem for tests and smoke runs; everything that reports
numbers on it labels them ``synthetic``.
"""
from __future__ import annotations

import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.parse
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets.utils import calculate_md5, download_url

from basisconv.core.checks import check_choice
from basisconv.core.progress import bar as progress_bar
from basisconv.experiment.io import save_torch, write_json

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
BATCHES_DIR = "cifar-10-batches-py"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Official CIFAR-10 channel statistics (the local JPEG mirror differs in the 3rd decimal; see README).
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
SPLITS = ("train", "val", "test")
SOURCES = ("cifar10", "synthetic")


class DataError(ValueError):
    """Raised for a bad archive or data location; the message names what was expected and what was found."""


def _is_url(source: str) -> bool:
    return urllib.parse.urlparse(str(source)).scheme in ("http", "https", "ftp")


def _local_path(source) -> Path:
    s = str(source)
    if s.startswith("file://"):
        return Path(urllib.parse.unquote(urllib.parse.urlparse(s).path))
    return Path(s).expanduser()


def _copy_with_progress(src: Path, dst: Path, chunk: int = 1 << 20) -> None:
    with open(src, "rb") as fi, open(dst, "wb") as fo, \
            progress_bar(total=src.stat().st_size, unit="B", unit_scale=True, desc=f"copy {src.name}") as bar:
        while buf := fi.read(chunk):
            fo.write(buf)
            bar.update(len(buf))


def _check_archive(path: Path) -> None:
    """Read every member of the tar.gz: a truncated gzip stream fails here, before anything is extracted."""
    need = {f"{BATCHES_DIR}/{n}" for n in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]}
    try:
        with tarfile.open(path, "r:gz") as tar:
            names = set()
            for member in tar:
                names.add(member.name)
                if member.isfile():
                    tar.extractfile(member).read()
    except (EOFError, tarfile.TarError, OSError) as e:
        raise DataError(f"archive {path} is truncated or corrupt ({path.stat().st_size} bytes): {e}. "
                        f"Expected a complete {ARCHIVE_NAME}; delete it and fetch again.") from e
    missing = sorted(need - names)
    if missing:
        raise DataError(f"archive {path} is not CIFAR-10 python: expected members {sorted(need)}, "
                        f"missing {missing}")


def fetch_cifar10(root, url: str = CIFAR10_URL, md5: str | None = CIFAR10_MD5) -> Path:
    """Download (or copy from a local path) the CIFAR-10 archive into ``root``, verify, extract; returns ``root``.

    ``url`` may be an http(s) URL (torchvision's ``download_url``, with a progress bar), a ``file://`` URL or a
    plain path. ``md5=None`` skips the checksum (the archive is still read end to end). On an md5 mismatch or a
    truncated archive a ``DataError`` names expected and actual values, and nothing is left in ``root``: the
    download and the extraction happen in temporary names that are renamed into place only when complete.
    Idempotent: an already extracted, verified copy is reused.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    archive, extracted = root / ARCHIVE_NAME, root / BATCHES_DIR
    stamp = root / ".fetched"  # records the md5 of the archive the extracted files came from
    if extracted.is_dir() and stamp.is_file() and (md5 is None or stamp.read_text().strip() == md5):
        return root
    if not _is_url(url):
        src = _local_path(url)
        if not src.is_file():
            raise DataError(f"CIFAR-10 source {url!r} is neither an http(s) URL nor an existing file "
                            f"(resolved to {src})")
    stamp.unlink(missing_ok=True)  # the extracted copy is not trusted until this fetch completes
    reuse = archive.is_file() and md5 is not None and calculate_md5(str(archive)) == md5
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp:
        tmp = Path(tmp)
        part = archive if reuse else tmp / ARCHIVE_NAME
        if not reuse:
            if _is_url(url):
                try:
                    download_url(url, str(tmp), ARCHIVE_NAME)
                except OSError as e:  # URLError, HTTPError, socket errors: say it in one line, with the way out
                    reason = getattr(e, "reason", None) or e
                    raise DataError(
                        f"could not download CIFAR-10 from {url} ({type(e).__name__}: {reason}). Offline? Use a "
                        "local copy: set data.source to an entry of data/sources.yaml that names a file (e.g. "
                        "jpeg_mirror: make repro PROFILE=\"cpu mirror\"), or add your archive's path and md5 there"
                    ) from None
            else:
                _copy_with_progress(src, part)
        actual = md5 if reuse else calculate_md5(str(part))
        if md5 is not None and actual != md5:
            raise DataError(f"md5 mismatch for CIFAR-10 archive from {url}: expected {md5}, got {actual} "
                            f"({part.stat().st_size} bytes; a truncated download or a different file). "
                            "Pass the right md5 (see README: local mirrors have their own) or fetch again.")
        _check_archive(part)
        with tarfile.open(part, "r:gz") as tar:
            tar.extractall(tmp, filter="data")
        if extracted.exists():
            shutil.rmtree(extracted)
        os.replace(tmp / BATCHES_DIR, extracted)
        if part != archive:
            os.replace(part, archive)
        stamp.write_text(actual + "\n")
    return root


def _read_batches(root: Path, names) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for n in names:
        with open(root / BATCHES_DIR / n, "rb") as f:
            d = pickle.load(f, encoding="latin1")
        xs.append(np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(d["labels"], dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def split_indices(labels: torch.Tensor, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stratified train/val index split: ``val_size`` samples spread evenly over classes, seeded, sorted."""
    n = len(labels)
    if isinstance(val_size, bool) or not isinstance(val_size, int) or not 0 <= val_size < n:
        raise ValueError(f"val_size must be an int in [0, {n}), got {val_size!r}")
    g = torch.Generator().manual_seed(seed)
    classes = torch.unique(labels)
    per_class = [val_size // len(classes) + (i < val_size % len(classes)) for i in range(len(classes))]
    val = []
    for c, k in zip(classes.tolist(), per_class):
        idx = torch.nonzero(labels == c).flatten()
        val.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    val = torch.sort(torch.cat(val)).values
    mask = torch.ones(n, dtype=torch.bool)
    mask[val] = False
    return torch.nonzero(mask).flatten(), val


def _check_split(split: str) -> None:
    check_choice(split, SPLITS, "split")


def load_cifar10(root, split: str, val_size: int = 5000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images uint8 (N, 3, 32, 32), labels int64 (N,))`` of ``train``/``val``/``test`` from a fetched ``root``.

    ``val`` (``val_size`` images, 10 % of them per class) is carved from the 50,000 training images with
    ``seed``; ``train`` is the rest. ``test`` is the official 10,000-image test batch.
    """
    _check_split(split)
    root = Path(root)
    if not (root / BATCHES_DIR).is_dir():
        raise DataError(f"no CIFAR-10 under {root} (expected {root / BATCHES_DIR}); run fetch_cifar10 first")
    if split == "test":
        x, y = _read_batches(root, ["test_batch"])
        return torch.from_numpy(x), torch.from_numpy(y)
    x, y = _read_batches(root, [f"data_batch_{i}" for i in range(1, 6)])
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    train_idx, val_idx = split_indices(y, val_size, seed)
    if split == "val" and val_size == 0:
        raise ValueError("split='val' needs val_size > 0")
    idx = train_idx if split == "train" else val_idx
    return x[idx], y[idx]


def synthetic_cifar(split: str, n_per_class: int = 100, num_classes: int = 10, seed: int = 0,
                    noise: float = 40.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A learnable CIFAR-shaped set: each class is a fixed smooth colour pattern, samples add shift and noise.

    Class templates depend only on ``seed`` (shared by all splits); samples of ``train``/``val``/``test`` come from
    disjoint random streams. A small ResNet separates the classes in a few epochs, but not in zero steps.
    """
    _check_split(split)
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(num_classes, 3, 4, 4, generator=g)  # low-frequency class patterns
    templates = torch.nn.functional.interpolate(coarse, size=(40, 40), mode="bicubic", align_corners=False)
    templates = (templates.clamp(0, 1) * 160 + 48)  # (classes, 3, 40, 40) in [48, 208]
    gs = torch.Generator().manual_seed(seed * 1000 + 1 + SPLITS.index(split))
    n = n_per_class * num_classes
    y = torch.arange(num_classes).repeat_interleave(n_per_class)
    y = y[torch.randperm(n, generator=gs)]
    dy, dx = torch.randint(0, 9, (2, n), generator=gs)  # random 32x32 window of the 40x40 template
    rows = (dy[:, None] + torch.arange(32))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(32))[:, None, None, :]
    x = templates[y][torch.arange(n)[:, None, None, None], torch.arange(3)[None, :, None, None], rows, cols]
    x = x + noise * torch.randn(x.shape, generator=gs)
    return x.round().clamp(0, 255).to(torch.uint8), y


def load_data(source: str, split: str, *, root=None, val_size: int = 5000, seed: int = 0,
              n_per_class: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Dispatch on ``source`` (``cifar10`` or ``synthetic``); the edge code passes params straight through."""
    if source == "cifar10":
        if root is None:
            raise ValueError("source='cifar10' needs root (the folder fetch_cifar10 wrote)")
        return load_cifar10(root, split, val_size=val_size, seed=seed)
    if source == "synthetic":
        return synthetic_cifar(split, n_per_class=n_per_class, seed=seed)
    check_choice(source, SOURCES, "data source")


def load_sources(path) -> dict:
    """The archive catalogue (``data/sources.yaml``): ``{name: {url, md5, label}}``."""
    import yaml
    return yaml.safe_load(Path(path).read_text())


def stratified_subset(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Sorted indices of ``n`` samples spread evenly over classes (the complement of a stratified split)."""
    if n <= 0 or n >= len(labels):
        return torch.arange(len(labels))
    _, keep = split_indices(labels, n, seed)
    return keep


def prepare(source: str, prepared, *, root=None, sources: dict | None = None, val_size: int = 5000,
            split_seed: int = 0, train_subset: int = 0, synthetic_per_class: int = 300) -> dict:
    """Fetch (if needed) and write the uint8 split cache ``prepared/{train,val,test}.pt`` plus ``meta.json``.

    ``source`` is ``synthetic`` or a key of ``sources`` (the catalogue); everything is validated before any
    download. Returns the metadata (source, label, md5, sizes and per-class counts) that is also written.
    """
    valid = ["synthetic"] + sorted(sources or {})
    if source not in valid:
        check_choice(source, valid, "data source")
    if isinstance(train_subset, bool) or not isinstance(train_subset, int) or train_subset < 0:
        raise ValueError(f"train_subset must be an int >= 0, got {train_subset!r}")
    prepared = Path(prepared)
    if root is not None:
        Path(root).mkdir(parents=True, exist_ok=True)  # a declared pipeline output, also for synthetic data
    if source == "synthetic":
        splits = {s: synthetic_cifar(s, n_per_class=synthetic_per_class if s == "train" else
                                     max(1, val_size // 10) if s == "val" else synthetic_per_class,
                                     seed=split_seed) for s in SPLITS}
        meta = {"source": "synthetic", "label": "synthetic", "md5": None, "url": None}
    else:
        entry = sources[source]
        fetch_cifar10(root, url=entry["url"], md5=entry["md5"])
        splits = {s: load_cifar10(root, s, val_size=val_size, seed=split_seed) for s in SPLITS}
        meta = {"source": source, "label": entry["label"], "md5": entry["md5"], "url": entry["url"]}
    x, y = splits["train"]
    keep = stratified_subset(y, train_subset, split_seed + 1)
    splits["train"] = (x[keep], y[keep])
    prepared.mkdir(parents=True, exist_ok=True)
    for s, (x, y) in splits.items():
        save_torch({"images": x.contiguous(), "labels": y.contiguous()}, prepared / f"{s}.pt")
    meta.update(classes=list(CLASSES), sizes={s: len(v[1]) for s, v in splits.items()},
                per_class={s: torch.bincount(v[1], minlength=10).tolist() for s, v in splits.items()})
    write_json(prepared / "meta.json", meta)
    return meta


def load_prepared(prepared, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A split written by ``prepare``: ``(uint8 images, int64 labels)``."""
    _check_split(split)
    path = Path(prepared) / f"{split}.pt"
    if not path.is_file():
        raise DataError(f"no prepared split at {path}; run the data stage (dvc repro data) first")
    d = torch.load(path, weights_only=True)
    return d["images"], d["labels"]
