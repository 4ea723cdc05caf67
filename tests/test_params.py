import json
from pathlib import Path

import pytest
import yaml

from basisconv.pipeline.params import available_profiles, check_section, compose

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "profiles"


def test_committed_params_is_the_paper_profile():
    committed = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert committed == compose("paper", profile_dir=PROFILES)


@pytest.mark.parametrize("combo", [["cpu"], ["smoke"], ["cpu", "mirror"], ["mirror"]])
def test_profiles_compose(combo):
    p = compose(*combo, profile_dir=PROFILES)
    base = compose("paper", profile_dir=PROFILES)
    assert set(p) == set(base)
    for section in base:
        if isinstance(base[section], dict):
            assert set(p[section]) == set(base[section]), section
    assert p["profile"] == "+".join(combo)


def test_profile_sizes():
    cpu, smoke = compose("cpu", profile_dir=PROFILES), compose("smoke", profile_dir=PROFILES)
    assert smoke["data"]["source"] == "synthetic"
    assert cpu["model"]["width"] >= 32  # narrower ResNets show no basis speedup on CPU
    assert compose("cpu", "mirror", profile_dir=PROFILES)["data"]["source"] == "jpeg_mirror"


def test_unknown_profile_and_key(tmp_path):
    with pytest.raises(ValueError, match="unknown profile 'gpu'; valid choices: cpu, cpu-full, cpu-long, mirror, paper, smoke"):
        compose("gpu", profile_dir=PROFILES)
    (tmp_path / "paper.yaml").write_text((PROFILES / "paper.yaml").read_text())
    (tmp_path / "bad.yaml").write_text("train:\n  epoch: 3\n")
    with pytest.raises(ValueError, match=r"profile 'bad' sets unknown keys \['train.epoch'\]"):
        compose("bad", profile_dir=tmp_path)


def test_check_section():
    schema = {"epochs": 3, "lr": 0.1}
    assert check_section("train", {"lr": 0.5}, schema) == {"epochs": 3, "lr": 0.5}
    with pytest.raises(ValueError, match="unknown key.*train.lrr in params; valid keys of 'train': epochs, lr"):
        check_section("train", {"lrr": 0.5}, schema)


def test_notebooks_committed_without_outputs():
    nbs = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert len(nbs) == 7
    for p in nbs:
        cells = json.loads(p.read_text())["cells"]
        assert not any(c.get("outputs") or c.get("execution_count") for c in cells), p.name
        assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in cells), p.name


def test_data_dvc_pins_the_catalogue():
    from torchvision.datasets.utils import calculate_md5
    d = yaml.safe_load((ROOT / "data.dvc").read_text())
    out = d["outs"][0]
    assert out["path"] == "data/sources.yaml" and out["cache"] is False
    assert out["md5"] == calculate_md5(str(ROOT / "data" / "sources.yaml")), \
        "data/sources.yaml changed without `dvc commit data.dvc`"
    sources = yaml.safe_load((ROOT / "data" / "sources.yaml").read_text())
    assert sources["official"]["md5"] == "c58f30108f718f92721af3b95e74349a"
    assert sources["jpeg_mirror"]["label"] == "CIFAR-10 (local JPEG mirror)"


def test_every_notebook_resolves_exactly_its_stage_sections():
    """The sections a notebook passes to params.for_notebook are the ones basisconv.pipeline.layout declares for its stage
    (and so the ones dvc.yaml lists under params:, and the ones the stage's key covers)."""
    import re
    from basisconv.pipeline.layout import STAGES
    for name, st in STAGES.items():
        src = "".join("".join(c["source"]) for c in json.loads((ROOT / st.notebook).read_text())["cells"])
        used = re.findall(r"(\w+)=\1\b", re.search(r"params\.for_notebook\((.*?)\)", src, re.S).group(1))
        assert used == list(st.params), (name, used, st.params)
        assert f'stages.get("{name}").run(P' in src, name  # one call into the stage's module


def test_notebook_runs_from_notebooks_dir_against_params_yaml(tmp_path):
    """As JupyterLab runs it: kernel started in notebooks/, nothing injected. The notebook finds the repository root
    and reads params.yaml (here: synthetic data, a non-default val_size that the paper profile would not have)."""
    import shutil
    import papermill as pm
    ws = tmp_path / "ws"
    for d in ("notebooks", "profiles", "data"):
        (ws / d).mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / "01_data.ipynb", ws / "notebooks")
    shutil.copy(ROOT / "profiles" / "paper.yaml", ws / "profiles")
    shutil.copy(ROOT / "data" / "sources.yaml", ws / "data")
    shutil.copy(ROOT / "dvc.yaml", ws)
    (ws / "src").symlink_to(ROOT / "src")
    p = compose("smoke", profile_dir=PROFILES)
    p["data"].update(val_size=120, synthetic_per_class=20)
    (ws / "params.yaml").write_text(yaml.safe_dump(p))
    pm.execute_notebook(str(ws / "notebooks" / "01_data.ipynb"), str(tmp_path / "out.ipynb"), cwd=str(ws / "notebooks"),
                        kernel_name="python3", progress_bar=False)
    meta = json.loads((ws / "data" / "prepared" / "meta.json").read_text())
    assert meta["label"] == "synthetic" and meta["sizes"]["val"] == 120
    assert (ws / "results" / "data" / "samples.png").is_file()
