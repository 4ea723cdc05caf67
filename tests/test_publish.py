import json
from pathlib import Path

import pandas as pd
import pytest

from basisconv.io import write_json
from basisconv.publish import END, START, publish


def _fake_run(tmp: Path):
    hw = {"device_name": "Test CPU", "threads": 2, "cpu_count": 2, "torch": "9.9", "torchvision": "0.99",
          "python": "3.11"}
    write_json(tmp / "results/metrics/baseline.json", {"profile": "cpu+mirror", "data": "CIFAR-10 (local JPEG mirror)",
                                                       "hardware": hw, "epoch_time_mean": 30.0, "train_time": 120.0,
                                                       "epochs": 4})
    write_json(tmp / "results/metrics/faithfulness.json", {
        "n_layers": 4, "n_pairs": 2, "ratio": 0.5, "retrain_epochs": 1, "spearman_finetune": 0.6, "seconds": 50.0,
        "additivity_real_mean_abs_interaction": 0.3, "additivity_finetune_mean_abs_interaction": 0.2,
        "params_resolved": {"sensitivity": {"proxies": ["finetune"]}}})
    write_json(tmp / "results/metrics/benchmark.json", {"hardware": hw})
    write_json(tmp / "results/selection.json", {"candidates": ["a", "b"], "layers": ["b"], "ratios": {"b": 0.5},
                                                "search_seconds": 12.0, "search_cost_fraction": 0.1,
                                                "predicted_loss": 0.3, "params_saved": 1234,
                                                "params_resolved": {"sensitivity": {"ratios": [0.5]}}})
    (tmp / "reports/tables").mkdir(parents=True)
    (tmp / "reports/figures").mkdir()
    (tmp / "reports/notebooks").mkdir()
    pd.DataFrame({"variant": ["baseline", "selected@switch", "random0@switch"], "test_acc_mean": [55.5, 55.1, 54.0],
                  "test_acc_std": [0.0, 0.0, 0.0], "seeds": [1, 1, 1], "params": [100, 80, 80], "data": ["x"] * 3}
                 ).to_csv(tmp / "reports/tables/main_table.csv", index=False)
    pd.DataFrame({"model": ["baseline"], "mode": ["train_step"], "batch_size": [64], "median_ms": [10.0],
                  "images_per_s": [6400.0], "theoretical_speedup": [1.0], "measured_speedup": [1.0]}
                 ).to_csv(tmp / "reports/tables/benchmark_models.csv", index=False)
    pd.DataFrame({"variant": ["baseline", "selected@switch"], "train_time": [120.0, 100.0]}
                 ).to_csv(tmp / "reports/tables/runs.csv", index=False)
    (tmp / "reports/tables/main_table.md").write_text("| t |\n")
    (tmp / "reports/figures/a.png").write_bytes(b"png")
    (tmp / "reports/README.md").write_text("# report\n")
    (tmp / "reports/notebooks/01_data.ipynb").write_text(json.dumps({"cells": [], "metadata": {"papermill": {"duration": 90.0}}}))


def test_publish_fills_block_from_files(tmp_path, monkeypatch):
    _fake_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    Path("README.md").write_text(f"intro\n{START}\nold\n{END}\noutro\n")
    dest = publish()
    text = Path("README.md").read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text
    for expected in ("cpu+mirror", "CIFAR-10 (local JPEG mirror)", "Test CPU", "1.5 min", "55.5", "1,234", "`b`@0.5",
                     "beats 1 of 1 comparison variants", "10 % of one baseline training", "0.60 (finetune)",
                     "sensitivity sweep 12 s, faithfulness checks 50 s, basis-stage trainings 100 s"):
        assert expected in text, expected
    assert dest == Path("docs/results/cpu-mirror") and (dest / "figures/a.png").is_file()
    publish()  # idempotent: the block is replaced again, not duplicated
    assert Path("README.md").read_text().count(START) == 1


def test_publish_needs_markers(tmp_path, monkeypatch):
    _fake_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    Path("README.md").write_text("no markers\n")
    with pytest.raises(ValueError, match="no <!-- results:start -->"):
        publish()
