import pickle
import sys
import tarfile
from pathlib import Path

# Test the checkout this file is in, whatever an editable install elsewhere points at.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np
import pytest
import torch

# Tests run on 2 cores; more threads than cores only adds contention.
torch.set_num_threads(min(2, torch.get_num_threads()))

SHARED_ARCHIVE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar-10-python.tar.gz"
SHARED_MD5 = "73a218927d26ccb416369341913728df"


def make_fake_cifar(path: Path, n_train_per_batch: int = 20, n_test: int = 20, seed: int = 0) -> Path:
    """A tiny archive with the exact layout of the official cifar-10-python.tar.gz."""
    rng = np.random.default_rng(seed)
    stage = path.parent / "fake_stage" / "cifar-10-batches-py"
    stage.mkdir(parents=True)

    def dump(name, n):
        d = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": list(np.arange(n) % 10),
             "batch_label": name, "filenames": [f"{i}.png" for i in range(n)]}
        with open(stage / name, "wb") as f:
            pickle.dump(d, f)

    for i in range(1, 6):
        dump(f"data_batch_{i}", n_train_per_batch)
    dump("test_batch", n_test)
    with open(stage / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["c%d" % i for i in range(10)]}, f)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(stage, arcname="cifar-10-batches-py")
    return path


@pytest.fixture
def fake_archive(tmp_path):
    return make_fake_cifar(tmp_path / "src" / "cifar-10-python.tar.gz")
