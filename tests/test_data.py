import os
from pathlib import Path

import pytest
import torch
from torchvision.datasets.utils import calculate_md5

from basisconv.experiment.data import DataError, fetch_cifar10, load_cifar10, load_data, synthetic_cifar
from basisconv.experiment.data import split_indices

from conftest import SHARED_ARCHIVE, SHARED_MD5


def _listing(root: Path):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("as_uri", [False, True])
def test_fetch_local_path_and_load(tmp_path, fake_archive, as_uri):
    md5 = calculate_md5(str(fake_archive))
    root = tmp_path / "data"
    src = fake_archive.as_uri() if as_uri else str(fake_archive)
    assert fetch_cifar10(root, url=src, md5=md5) == root
    assert (root / "cifar-10-python.tar.gz").is_file() and (root / "cifar-10-batches-py" / "test_batch").is_file()
    x, y = load_cifar10(root, "train", val_size=20)
    xv, yv = load_cifar10(root, "val", val_size=20)
    xt, yt = load_cifar10(root, "test")
    assert x.dtype == torch.uint8 and x.shape == (80, 3, 32, 32) and y.dtype == torch.int64
    assert xv.shape == (20, 3, 32, 32) and xt.shape == (20, 3, 32, 32)
    assert torch.bincount(yv, minlength=10).tolist() == [2] * 10  # stratified
    # fetching again reuses the verified copy (no copy from the source needed)
    os.remove(fake_archive)
    assert fetch_cifar10(root, url=src, md5=md5) == root


def test_md5_mismatch_names_both_and_leaves_nothing(tmp_path, fake_archive):
    root = tmp_path / "data"
    actual = calculate_md5(str(fake_archive))
    with pytest.raises(DataError, match=f"expected 0123456789abcdef0123456789abcdef, got {actual}"):
        fetch_cifar10(root, url=str(fake_archive), md5="0123456789abcdef0123456789abcdef")
    assert _listing(root) == []


def test_truncated_archive(tmp_path, fake_archive):
    cut = tmp_path / "cut" / "cifar-10-python.tar.gz"
    cut.parent.mkdir()
    data = fake_archive.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    root = tmp_path / "data"
    # with an md5: the mismatch is reported with both sums and the byte count
    with pytest.raises(DataError, match=rf"expected {calculate_md5(str(fake_archive))}, got "
                                        rf"{calculate_md5(str(cut))} \({len(data) // 2} bytes"):
        fetch_cifar10(root, url=str(cut), md5=calculate_md5(str(fake_archive)))
    assert _listing(root) == []
    # without an md5 the archive is still read end to end before anything is extracted
    with pytest.raises(DataError, match="truncated or corrupt"):
        fetch_cifar10(root, url=str(cut), md5=None)
    assert _listing(root) == []


def test_missing_source_and_missing_data(tmp_path):
    with pytest.raises(DataError, match="neither an http"):
        fetch_cifar10(tmp_path / "d", url=str(tmp_path / "nope.tar.gz"))
    with pytest.raises(DataError, match="run fetch_cifar10 first"):
        load_cifar10(tmp_path / "empty", "train")


@pytest.mark.parametrize("bad,match", [
    (dict(split="dev"), "unknown split 'dev'; valid choices: train, val, test"),
    (dict(split="train", val_size=-1), "val_size must be an int"),
])
def test_load_errors(tmp_path, fake_archive, bad, match):
    root = fetch_cifar10(tmp_path / "data", url=str(fake_archive), md5=None)
    with pytest.raises(ValueError, match=match):
        load_cifar10(root, **bad)


def test_load_data_unknown_source():
    with pytest.raises(ValueError, match="unknown data source 'imagenet'; valid choices: cifar10, synthetic"):
        load_data("imagenet", "train")


@pytest.mark.parametrize("val_size,seed", [(100, 0), (100, 1), (37, 3)])
def test_val_split_deterministic_disjoint_stratified(val_size, seed):
    labels = torch.arange(1000) % 10
    tr, va = split_indices(labels, val_size, seed)
    tr2, va2 = split_indices(labels, val_size, seed)
    assert torch.equal(tr, tr2) and torch.equal(va, va2)
    assert len(va) == val_size and len(tr) + len(va) == 1000
    assert set(tr.tolist()).isdisjoint(va.tolist())
    counts = torch.bincount(labels[va], minlength=10)
    assert counts.max() - counts.min() <= 1
    assert not torch.equal(va, split_indices(labels, val_size, seed + 10)[1])


def test_synthetic_is_deterministic_and_split():
    x1, y1 = synthetic_cifar("train", n_per_class=20, seed=0)
    x2, y2 = synthetic_cifar("train", n_per_class=20, seed=0)
    xt, _ = synthetic_cifar("test", n_per_class=20, seed=0)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert x1.dtype == torch.uint8 and x1.shape == (200, 3, 32, 32)
    assert torch.bincount(y1).tolist() == [20] * 10
    assert not torch.equal(x1, xt)


@pytest.mark.skipif(not SHARED_ARCHIVE.is_file(), reason="local CIFAR-10 mirror not present")
def test_local_mirror_through_normal_path(tmp_path):
    """CIFAR-10 (local JPEG mirror) through the ordinary fetch path with its own md5."""
    root = fetch_cifar10(tmp_path / "data", url=str(SHARED_ARCHIVE), md5=SHARED_MD5)
    x, y = load_cifar10(root, "train")
    xv, yv = load_cifar10(root, "val")
    xt, yt = load_cifar10(root, "test")
    assert (len(x), len(xv), len(xt)) == (45000, 5000, 10000)
    assert torch.bincount(yv).tolist() == [500] * 10 and torch.bincount(yt).tolist() == [1000] * 10
    mean = x[:5000].float().mean((0, 2, 3)) / 255
    torch.testing.assert_close(mean, torch.tensor([0.4913, 0.4821, 0.4465]), atol=0.01, rtol=0)


def test_failed_download_is_one_actionable_line(tmp_path, monkeypatch):
    """Offline: one line naming the URL, the reason and how to use a local copy; nothing left behind."""
    import urllib.error

    import basisconv.experiment.data as data_mod

    def offline(url, root, filename):
        (Path(root) / filename).write_bytes(b"partial")  # a download that started, then failed
        raise urllib.error.URLError("[Errno -2] Name or service not known")
    monkeypatch.setattr(data_mod, "download_url", offline)
    with pytest.raises(data_mod.DataError) as info:
        data_mod.fetch_cifar10(tmp_path / "root", url="https://example.invalid/cifar-10-python.tar.gz")
    msg = str(info.value)
    assert "\n" not in msg and info.value.__cause__ is None and info.value.__suppress_context__
    assert msg.startswith("could not download CIFAR-10 from https://example.invalid/cifar-10-python.tar.gz "
                          "(URLError: [Errno -2] Name or service not known). Offline? Use a local copy")
    assert "data/sources.yaml" in msg and "jpeg_mirror" in msg
    assert [p.name for p in (tmp_path / "root").iterdir()] == []  # no partial file, no half-extracted folder
