"""Content-addressed keys: a result follows its inputs (params, input file content, code)."""
import shutil

import pytest
import torch

from basisconv.pipeline import keys
from basisconv.experiment.io import save_torch


def test_content_digest_follows_bytes_not_size_or_time(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"x" * 100)
    b.write_bytes(b"y" * 100)  # same size, other content: the old key (byte size) could not tell them apart
    assert keys.content_digest(a) != keys.content_digest(b)
    d1 = keys.content_digest(a)
    a.write_bytes(b"x" * 100)  # rewritten, same bytes
    assert keys.content_digest(a) == d1
    with pytest.raises(FileNotFoundError, match="does not exist; run the stage that writes it first"):
        keys.content_digest(tmp_path / "missing.pt")


def test_folder_digest_sees_every_file_and_skips_hidden(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.pt").write_bytes(b"1")
    d = keys.content_digest(tmp_path / "d")
    (tmp_path / "d" / ".x.tmp").write_bytes(b"partial")  # a temporary file of an atomic write
    assert keys.content_digest(tmp_path / "d") == d
    (tmp_path / "d" / "y.pt").write_bytes(b"2")
    assert keys.content_digest(tmp_path / "d") != d


def test_saved_tensors_have_reproducible_bytes(tmp_path):
    t = {"w": torch.arange(12.0).reshape(3, 4)}
    save_torch(t, tmp_path / "a.pt")
    save_torch(t, tmp_path / "b.pt")
    assert keys.content_digest(tmp_path / "a.pt") == keys.content_digest(tmp_path / "b.pt")


def test_digest_ignores_dict_order():
    assert keys.digest({"a": 1, "b": 2}) == keys.digest({"b": 2, "a": 1}) != keys.digest({"a": 1, "b": 3})


@pytest.fixture
def package_copy(tmp_path):
    dst = tmp_path / "basisconv"
    shutil.copytree(keys.PACKAGE_DIR, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


@pytest.mark.parametrize("edited,stage,changes", [
    ("core/sensitivity.py", "sensitivity", True), ("experiment/train.py", "baseline", True),
    ("experiment/train.py", "basis", True), ("perf/bench.py", "sensitivity", True),
    ("core/basis.py", "basis", True),
    ("core/sensitivity.py", "baseline", False), ("pipeline/publish.py", "basis", False),
    ("pipeline/narrative.py", "benchmark", False), ("pipeline/variants.py", "basis", True),
    ("core/basis.py", "data", False), ("experiment/train.py", "data", False),
])
def test_code_digest_follows_the_closure(package_copy, edited, stage, changes):
    module = f"basisconv.pipeline.stages.{stage}"
    before = keys.code_digest(module, package_copy)
    with open(package_copy / edited, "a") as f:
        f.write("\nEDITED = 1  # a change of code\n")
    assert (keys.code_digest(module, package_copy) != before) == changes


@pytest.mark.timeout(60)
def test_run_files_keep_names_with_dots(tmp_path):
    """A front point's run name holds a dot (``all_layers~r0.25``): every seed and key keeps files of its own."""
    from basisconv.pipeline.runs import run_files
    a, b = run_files(tmp_path, "all_layers~r0.25@switch_s0", "k1"), run_files(tmp_path, "all_layers~r0.25@switch_s1", "k1")
    assert a["ckpt"].name == "all_layers~r0.25@switch_s0-k1.ckpt" and a["json"].name.endswith("_s0-k1.json")
    assert a["weights"].name == "all_layers~r0.25@switch_s0-k1.pt"
    assert not set(a.values()) & set(b.values())


COMPUTING = ("data", "baseline", "sensitivity", "faithfulness", "basis", "benchmark")
PROSE = ("captions", "claims", "narrative", "figures", "tables", "publish", "render", "display")


def _digests(root):
    return {s: keys.code_digest(f"basisconv.pipeline.stages.{s}", root) for s in COMPUTING}


def test_words_never_enter_a_key(package_copy):
    """A statement appended to every prose module, a reworded docstring and a comment in the variant registry (what
    every basis training imports), and a label, colour and figure path edited where they live: no training, sweep,
    faithfulness or benchmark key changes. A change of code in the registry does change them."""
    before = _digests(package_copy)
    for m in PROSE:
        with open(package_copy / "pipeline" / f"{m}.py", "a") as f:
            f.write("\nEDITED_WORDS = 'an appended statement'\n")
    variants = package_copy / "pipeline" / "variants.py"
    src = variants.read_text()
    assert '"""The basis stage\'s variants' in src
    variants.write_text(src.replace('"""The basis stage\'s variants', '"""Reworded: the basis stage\'s variants', 1)
                        + "\n# a comment\n")
    display = package_copy / "pipeline" / "display.py"
    d = display.read_text()
    for old, new in (('"the full-rank model"', '"the dense model"'), ('"tab:red"', '"tab:orange"'),
                     ('"results/basis/fronts.png"', '"results/basis/front.png"')):
        assert old in d
        d = d.replace(old, new)
    display.write_text(d)
    assert _digests(package_copy) == before
    assert 'POINT = "~"' in variants.read_text()
    variants.write_text(variants.read_text().replace('POINT = "~"', 'POINT = "+"'))
    after = _digests(package_copy)
    assert after["basis"] != before["basis"] and after["data"] == before["data"]


def test_computation_ignores_docstrings_and_comments_only():
    a = 'def f(x):\n    """Doc."""\n    return x + 1  # one\n'
    assert keys.computation(a) == keys.computation('def f(x):\n    """Other words."""\n\n    return (x +\n            1)\n')
    assert keys.computation(a) != keys.computation('def f(x):\n    return x + 2\n')
    assert keys.computation('X = "label"\n') != keys.computation('X = "other label"\n')  # a string that is data
