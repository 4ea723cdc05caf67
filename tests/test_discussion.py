"""Known-answer tests of the generated stage discussions (``basisconv.pipeline.discussion``): constructed results in,
the sentences, numbers and verdict words that must come out (and the ones that must not)."""
import math

import pandas as pd
import pytest

from basisconv.pipeline import discussion as D
from basisconv.pipeline.stages.basis import main_table

CLASSES = [f"c{i}" for i in range(10)]
P = {"model": {"arch": "resnet18", "width": 64}, "data": {"val_size": 5000},
     "sensitivity": {"selection_proxy": "finetune", "proxies": ["zero_shot", "finetune"], "confidence": 0.95,
                     "max_loss": 0.5},
     "faithfulness": {"epochs": 2}, "basis": {"comparison_schedule": "switch"}}


def _sentences(text: str) -> int:
    return text.count(". ") + text.endswith(".")


def _table(train, val, test):
    t = pd.DataFrame({"train": train, "val": val, "test": test}, index=CLASSES)
    t.loc["total"] = t.sum()
    return t


@pytest.mark.timeout(30)
def test_formatting_helpers():
    assert D._f(-1e-14) == "0.00" and D._f(1e-14, sign=True) == "0.00" and D._f(math.nan) == "n/a"
    assert D._f(0.123456, 2, sign=True) == "+0.12" and D._pct(0.91234) == "91.23 %"
    assert D._n(1, "seed") == "1 seed" and D._n(3, "seed") == "3 seeds" and D._n(10000, "image") == "10,000 images"
    assert D._n(1, "proxy", "proxies") == "1 proxy" and D._n(2, "proxy", "proxies") == "2 proxies"


@pytest.mark.timeout(30)
def test_data_subsample_mirror_stratified():
    meta = {"label": "CIFAR-10 (local JPEG mirror)", "source": "jpeg_mirror", "md5": "abc",
            "sizes": {"train": 10000, "val": 5000, "test": 10000}}
    text = D.data(meta, _table([1000] * 10, [500] * 10, [1000] * 10))
    assert "**CIFAR-10 (local JPEG mirror)**" in text and "md5 `abc`" in text
    assert "10,000 training images" in text and "5,000 validation images" in text
    assert "50,000" in text and "15,000 (30.00 % of that)" in text and "20.00 % of the paper's images" in text
    assert "full 10,000-image test set" in text
    assert "exactly 500 per class" in text and "stratified split" in text and "not stratified" not in text
    assert "synthetic" not in text and _sentences(text) >= 4


@pytest.mark.timeout(30)
def test_data_full_split_synthetic_and_unbalanced():
    full = D.data({"label": "CIFAR-10", "source": "official", "sizes": {"train": 45000, "val": 5000, "test": 10000}},
                  _table([4500] * 10, [500, 501] * 5, [1000] * 10))
    assert "are the paper's 50,000 CIFAR-10 training images" in full and "45,000 of them (90.00 %)" in full
    assert "500 to 501 per class" in full and "stratified split gives" in full
    syn = D.data({"label": "synthetic", "source": "synthetic", "sizes": {"train": 1000, "val": 500, "test": 1000}},
                 _table([100] * 10, [30, 70] * 5, [100] * 10))
    assert "synthetic stand-in images, not CIFAR-10" in syn and "against the paper's 10,000" in syn
    assert "not stratified (classes differ by up to 40 images)" in syn
    missing = D.data({"label": "CIFAR-10"}, pd.DataFrame())
    assert "not recorded" in missing


def _history(val):
    n = len(val)
    return pd.DataFrame({"epoch": range(1, n + 1), "train_loss": [2.0 - 0.1 * i for i in range(n)],
                         "val_loss": [1.0] * n, "train_acc": val, "val_acc": val, "images": [45000] * n})


METRICS = {"test_acc": 0.91234, "val_acc": 0.9, "train_time": 3725.4, "epoch_time_mean": 93.1, "epochs": 40,
           "hardware": {"device_name": "NVIDIA H100", "threads": 8}, "data": "CIFAR-10", "precision": "bf16"}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("val,reading", [([0.5, 0.7, 0.8, 0.85, 0.9], "still improving at the end"),
                                         ([0.5, 0.9, 0.901, 0.9, 0.9005], "flat at the end"),
                                         ([0.5, 0.9, 0.88, 0.86, 0.84], "falling at the end")])
def test_baseline_trend_and_numbers(val, reading):
    text = D.baseline(P, METRICS, _history(val))
    assert reading in text and "Test accuracy: 91.23 %." in text
    assert f"final validation accuracy {100 * val[-1]:.2f} %" in text
    assert "3,725 s (62.1 min) for 40 epochs" in text and "45,000 training images per epoch" in text
    assert "NVIDIA H100 (8 threads) in bf16" in text and _sentences(text) >= 4
    others = {"still improving at the end", "flat at the end", "falling at the end"} - {reading}
    assert not any(o in text for o in others)


@pytest.mark.timeout(30)
def test_baseline_one_epoch_and_no_history():
    assert "no trend to read" in D.baseline(P, METRICS, _history([0.4]))
    text = D.baseline(P, {"data": "CIFAR-10"}, pd.DataFrame())
    assert "no per-epoch validation history" in text and "No test accuracy was recorded." in text


def _sens_rows():
    rows = []
    for i, layer in enumerate(["a", "b", "c"]):
        for q in (0.25, 0.5):
            for proxy in ("zero_shot", "finetune"):
                d = i + q  # c@0.5 the most sensitive, a@0.25 the least
                rows.append({"layer": layer, "ratio": q, "proxy": proxy, "delta_acc": d,
                             "ci_low": d - 1.0, "ci_high": d + 1.0})
    return pd.DataFrame(rows)


@pytest.mark.timeout(30)
def test_sensitivity_known_answer():
    sel = {"layers": ["a", "b"], "ratios": {"a": 0.25, "b": 0.5}, "predicted_loss": 0.42, "params_saved": 12345,
           "search_seconds": 900.0, "baseline_train_seconds": 3000.0}
    text = D.sensitivity(P, _sens_rows(), sel, ["a", "b", "c"])
    assert "12 options (3 candidate layers x 2 ratios x 2 proxies)" in text
    assert "most sensitive option is `c` at ratio 0.5 (drop +2.50 points, 95 % CI [+1.50, +3.50])" in text
    assert "the least `a` at ratio 0.25 (drop +0.25 points" in text
    # intervals above 0: b and c at both ratios (low = drop - 1 > 0); a at both ratios includes 0
    assert "Of its 6 options, 4 have an interval above 0" in text and "0 below 0" in text and "2 include 0" in text
    assert "at ratio 0.25: `a`; at ratio 0.5: `b`" in text and "budget of 0.5 points" in text
    assert "12,345 parameters" in text
    assert "The paper claims that the sensitivity search is cheap" in text and "does not hold here" in text  # 30 %


@pytest.mark.timeout(30)
def test_sensitivity_empty_selection_and_no_rows():
    text = D.sensitivity(P, _sens_rows(), {"layers": [], "search_seconds": 10.0, "baseline_train_seconds": 1000.0},
                         ["a", "b", "c"])
    assert "took no layer" in text and "This holds here" in text  # 1 % of a training: cheap
    bare = D.sensitivity(P, pd.DataFrame(), {}, [])
    assert "no rows for the selection proxy `finetune`" in bare and "was not recorded" in bare


def _faith(lo, hi, rho=0.6):
    return {"n_layers": 5, "ratio": 0.5, "n_pairs": 2, "retrain_epochs": 2, "confidence": 0.95,
            "spearman_finetune": rho, "spearman_finetune_ci_low": lo, "spearman_finetune_ci_high": hi,
            "spearman_zero_shot": 0.1, "spearman_zero_shot_ci_low": -0.5, "spearman_zero_shot_ci_high": 0.7,
            "additivity_real_mean_abs_interaction": 0.31, "additivity_finetune_mean_abs_interaction": 0.2,
            "additivity_zero_shot_mean_abs_interaction": None, "seconds": 600.0, "baseline_train_seconds": 3000.0}


FAITH_TABLE = pd.DataFrame({"layer": list("abcde"), "real_drop": [0.1, -0.2, 1.5, 0.4, 0.0],
                            "real_ci_low": [-0.3] * 5, "real_ci_high": [0.5, 0.2, 2.0, 0.8, 0.4]})
PAIRS = pd.DataFrame({"method": ["real", "real", "finetune"], "layer_a": ["a", "b", "a"], "layer_b": ["c", "d", "c"],
                      "interaction": [0.12, -0.5, 3.0]})


@pytest.mark.timeout(30)
@pytest.mark.parametrize("lo,hi,words", [(0.2, 0.9, "This holds here"), (-0.3, 0.9, "This is not decided here"),
                                         (-0.9, -0.2, "This does not hold here")])
def test_faithfulness_verdict_words(lo, hi, words):
    text = D.faithfulness(P, _faith(lo, hi), FAITH_TABLE, PAIRS)
    assert ("The search assumes that the `finetune` proxy ranks layers in the same direction as retraining them at ratio "
            "0.5 for 2 epochs (rank correlation above 0). " + words) in text
    assert "On 5 layers at ratio 0.5" in text and "2 epochs" in text and "largest: `c`, CI [-0.30, +2.00]" in text
    assert "not used by the selection: Spearman 0.10 (zero_shot; 95 % bootstrap CI [-0.50, 0.70]" in text
    assert "over 2 layer pairs" in text and "0.31 points" in text
    assert "(by the proxies: 0.20 points with `finetune`)" in text
    assert "-0.50 points (`b` with `d`)" in text  # the largest retrained interaction, not the proxy's 3.0
    assert "20.00 % of one baseline training" in text


@pytest.mark.timeout(30)
def test_faithfulness_missing_pieces():
    s = dict(_faith(math.nan, math.nan, rho=math.nan), additivity_real_mean_abs_interaction=None, n_pairs=0)
    text = D.faithfulness(P, s, FAITH_TABLE, PAIRS.iloc[0:0])
    assert "cannot speak to whether it ranks layers" in text
    assert "additivity the knapsack assumes is not measured" in text
    assert "holds here" not in text and "not decided here" not in text
    assert "No faithfulness summary" in D.faithfulness(P, {}, pd.DataFrame(), pd.DataFrame())


def _runs(spec, seeds=(0, 1, 2)):
    """``spec``: {variant: (params, [accuracy % per seed])}."""
    return pd.DataFrame([{"variant": v, "seed": s, "test_acc": accs[i] / 100, "params": params, "macs": 10 * params,
                          "epoch_time_mean": 1.0, "basis_epoch_time": 1.0, "train_time": 10.0}
                         for i, s in enumerate(seeds) for v, (params, accs) in spec.items()])


@pytest.mark.timeout(60)
def test_basis_contradicted_and_undecided():
    runs = _runs({"baseline": (1_000_000, [90.0, 91.0, 89.0]), "selected@switch": (600_000, [85.0, 86.0, 84.1]),
                  "all_layers@switch": (400_000, [89.0, 92.5, 87.0])})
    text = D.basis(P, runs, main_table(runs, "test"))
    assert "3 variants trained with 3 seeds each" in text and "seed(s)" not in text
    assert "The paper claims that the sensitivity-selected layers keep accuracy" in text
    keep = next(l for l in text.splitlines() if "keep accuracy" in l)
    assert "This does not hold here" in keep  # about -5 points every seed
    beats = next(l for l in text.splitlines() if "beats basis layers on every layer" in l)
    assert "This is not decided here" in beats  # the all-layers gap swings over seeds
    assert "1,000,000 parameters" in text and "1.67x compression" in text and "600,000 parameters" in text
    assert "The baseline reaches 90.00 ± 1.00 %" in text and "mean over seeds ± its standard deviation" in text


@pytest.mark.timeout(60)
def test_basis_says_which_run_names_train_one_model():
    acc = [85.0, 86.0, 84.1]
    runs = _runs({"baseline": (1_000_000, [90.0, 91.0, 89.0]), "all_layers@switch": (400_000, acc),
                  "selected@switch": (600_000, [89.0, 90.5, 88.0]), "spectral@switch": (400_000, acc)})
    text = D.basis(P, runs, main_table(runs, "test"), same={"spectral@switch": "all_layers@switch"})
    assert "One model under two run names: `spectral@switch` is `all_layers@switch`" in text
    spectral = next(l for l in text.splitlines() if "(`spectral@switch`)" in l)
    assert spectral.endswith("so this row repeats the row `selected@switch - all_layers@switch`.")
    assert "One model" not in D.basis(P, runs, main_table(runs, "test"))


@pytest.mark.timeout(60)
def test_basis_one_seed_and_no_selection():
    runs = _runs({"baseline": (1000, [90.0]), "all_layers@switch": (500, [85.0])}, seeds=(0,))
    text = D.basis(P, runs, main_table(runs, "test"))
    assert "trained with 1 seed each; test accuracy is that seed's." in text
    assert "With 1 seed no paired interval exists" in text
    assert "seed(s)" not in text and "1 seeds" not in text and "±" not in text
    assert "There is no `selected@switch` run" in text and "This is not decided here" in text
    assert "holds here" not in text.replace("not decided here", "")
    assert "nothing to compare" in D.basis(P, pd.DataFrame(), pd.DataFrame())


def _models(low, high, repeats=5):
    return pd.DataFrame([{"model": m, "mode": mode, "precision": p, "measured_speedup": (low + high) / 2,
                          "theoretical_speedup": 1.8, "speedup_low": low, "speedup_high": high, "repeats": repeats}
                         for m in ("baseline", "all_layers", "selected_switched")
                         for mode in ("train_step", "inference") for p in ("fp32", "bf16")])


TARGETS = {"layers_fraction_of_theory": {"target": ">= 0.85 for layers with theoretical >= 1.5x", "n_layers": 12,
                                         "n_met": 5, "median": 0.7, "n_kernel_limited": 4}}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("low,high,words", [(1.1, 1.3, "This holds here"), (0.9, 1.2, "This is not decided here"),
                                            (0.6, 0.8, "This does not hold here"),
                                            (math.nan, math.nan, "This is not decided here")])
def test_benchmark_speed_verdicts(low, high, words):
    out = {"models": _models(low, high), "precision": "bf16", "targets": TARGETS,
           "hardware": {"device_name": "NVIDIA H200", "threads": 16, "torch": "2.5.0"}}
    text = D.benchmark(P, out)
    bullets = [l for l in text.splitlines() if l.startswith("- The paper claims")]
    assert len(bullets) == 4 and all(words in b for b in bullets)  # 2 models x (train step, inference)
    assert "NVIDIA H200 (16 threads, torch 2.5.0) in bf16" in text
    assert "5 of 12 (layer, ratio) cases" in text and "4 of the 7 misses are kernel-limited" in text


@pytest.mark.timeout(30)
def test_benchmark_missing_models_and_targets():
    text = D.benchmark(P, {"models": pd.DataFrame(), "precision": "fp32", "targets": {}, "hardware": {}})
    assert "speed claim cannot be decided" in text and "No per-layer target was recorded." in text
    none_held = D.benchmark(P, {"targets": {"layers_fraction_of_theory": {"target": ">= 0.85", "n_layers": 0}}})
    assert "No (layer, ratio) case is held" in none_held


@pytest.mark.timeout(30)
def test_report_strips_title_keeps_the_rest():
    body = "Profile **smoke**.\n\n## Main table\n\n| a |\n|---|\n| 1 |\n\n" + "word " * 2000 + "end."
    out = D.report("# Title of the run\n\n" + body)
    assert not out.startswith("#") and out.strip() == body.strip() and out.rstrip().endswith("end.")
    assert "report is empty" in D.report("")
