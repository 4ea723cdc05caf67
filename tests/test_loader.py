import pytest
import torch

from basisconv.experiment.loader import TensorLoader
from basisconv.experiment.data import synthetic_cifar


@pytest.fixture(scope="module")
def data():
    return synthetic_cifar("train", n_per_class=30)


@pytest.mark.parametrize("batch_size", [32, 64, 300])
def test_epoch_sees_each_sample_once(batch_size):
    x = torch.arange(300, dtype=torch.int64)
    imgs = (x % 256).to(torch.uint8).view(-1, 1, 1, 1).expand(300, 3, 32, 32).contiguous()
    loader = TensorLoader(imgs, x, batch_size, train=True, seed=0, pad=0, drop_last=False)
    seen = torch.cat([y for _, y in loader])
    assert sorted(seen.tolist()) == list(range(300))
    loader.set_epoch(1)
    assert not torch.equal(seen, torch.cat([y for _, y in loader]))  # reshuffled each epoch


def test_deterministic_per_seed_and_epoch(data):
    a = TensorLoader(*data, 50, seed=3)
    b = TensorLoader(*data, 50, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_eval_loader_is_plain_normalisation(data):
    x, y = data
    loader = TensorLoader(x, y, 64, train=False, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert len(loader) == -(-len(x) // 64)
    xs = torch.cat([b for b, _ in loader])
    torch.testing.assert_close(xs, (x.float() / 255 - 0.5) / 0.25)


def test_normalised_statistics(data):
    x, y = data
    mean = (x.float() / 255).mean((0, 2, 3))
    std = (x.float() / 255).std((0, 2, 3))
    loader = TensorLoader(x, y, 100, train=False, mean=tuple(mean.tolist()), std=tuple(std.tolist()))
    xs = torch.cat([b for b, _ in loader])
    torch.testing.assert_close(xs.mean((0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(xs.std((0, 2, 3)), torch.ones(3), atol=1e-3, rtol=0)


def test_crop_and_flip_are_real_crops_and_flips():
    torch.manual_seed(0)
    imgs = torch.randint(1, 256, (400, 3, 32, 32), dtype=torch.uint8)  # no zeros: padding is recognisable
    loader = TensorLoader(imgs, torch.arange(400), 400, train=True, seed=1)
    g = torch.Generator().manual_seed(5)
    out = loader.augment(imgs, g)
    assert out.shape == imgs.shape and out.dtype == torch.uint8
    n_flipped = 0
    for i in range(400):
        o, src = out[i], imgs[i]
        match = None
        for flip in (False, True):
            s = src.flip(2) if flip else src
            padded = torch.nn.functional.pad(s, (4, 4, 4, 4))
            for dy in range(9):
                for dx in range(9):
                    if torch.equal(padded[:, dy:dy + 32, dx:dx + 32], o):
                        match = flip
                        break
                if match is not None:
                    break
            if match is not None:
                break
        assert match is not None, f"sample {i} is not a padded crop of its source"
        n_flipped += match
    assert 150 < n_flipped < 250  # about half flipped


def test_shards_partition_an_epoch(data):
    x, y = data
    idx = torch.arange(len(y))
    shards = [TensorLoader(x, idx, 10, seed=0, shard=(r, 2)) for r in range(2)]
    seen = [torch.cat([b for _, b in s]) for s in shards]
    assert set(seen[0].tolist()).isdisjoint(seen[1].tolist())
    assert len(seen[0]) + len(seen[1]) == len(y)


@pytest.mark.parametrize("kwargs,match", [(dict(batch_size=0), "batch_size must be a positive int, got 0"),
                                          (dict(batch_size=10_000), "leaves no batch")])
def test_bad_batch(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        TensorLoader(*data, **kwargs)
