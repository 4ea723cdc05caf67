import math

import pandas as pd
import pytest

from basisconv.pipeline import report


def _table(rows):
    return pd.DataFrame(rows, columns=["variant", "test_acc_mean", "test_acc_std", "seeds", "params"])


def test_selection_verdict_counts_wins():
    mt = _table([("baseline", 90.0, 0.1, 3, 1000), ("all_layers@switch", 85.0, 0.2, 3, 500),
                 ("selected@switch", 89.0, 0.1, 3, 800), ("random0@switch", 88.5, 0.3, 3, 790),
                 ("largest@switch", 89.5, 0.1, 3, 780), ("selected@scratch", 70.0, 1.0, 3, 800)])
    s = report.selection_verdict(mt)
    assert "higher mean against 2 of 3 comparison variants" in s
    assert "`all_layers@switch` 85.00 ± 0.20 % with 500 parameters (+4.00 points for the selection)" in s
    assert "`largest@switch` 89.50 ± 0.10 % with 780 parameters (-0.50 points" in s
    assert "selected@scratch" not in s.split(";", 1)[1]  # other schedules are not compared
    assert "one seed" not in s


def test_selection_verdict_counts_one_model_once():
    """Known answers: a subset that is the all-layers model counts once with it, and one that is the selection's own
    model is not counted; both are said, the runs' own rows stay listed."""
    mt = _table([("all_layers@switch", 85.0, 0.2, 3, 500), ("selected@switch", 89.0, 0.1, 3, 800),
                 ("largest@switch", 89.5, 0.1, 3, 780), ("spectral@switch", 85.0, 0.2, 3, 500),
                 ("random0@switch", 89.0, 0.1, 3, 800)])
    s = report.selection_verdict(mt, same={"spectral@switch": "all_layers@switch", "random0@switch": "selected@switch"})
    assert "higher mean against 1 of 2 distinct models" in s
    assert ("`spectral@switch` is the same model as `all_layers@switch` here (the same layers at the same ratios), "
            "so the two count once.") in s
    assert "`random0@switch` is the selection's own model here (the same layers at the same ratios), so it is not " \
           "counted." in s
    assert "`spectral@switch` 85.00 ± 0.20 % with 500 parameters (+4.00 points" in s
    assert "against 2 of 4 comparison variants" in report.selection_verdict(mt)  # not told: counted by name


def test_same_models_text_names_only_the_runs_of_the_table():
    runs = pd.DataFrame({"variant": ["all_layers@switch", "spectral@switch"] * 2 + ["random0@switch"] * 2,
                         "seed": [0, 0, 1, 1, 0, 1], "test_acc": [0.8, 0.8, 0.81, 0.81, 0.7, 0.71]})
    same = {"spectral@switch": "all_layers@switch", "random0~ml2@switch": "random0@switch"}
    s = report.same_models_text(same, runs)
    assert s.startswith("One model under two run names: `spectral@switch` is `all_layers@switch` (equal test "
                        "accuracy on each of 2 seeds). The same layers")
    assert "random0~ml2" not in s
    apart = runs.assign(test_acc=[0.8, 0.8, 0.81, 0.8125, 0.7, 0.71])  # the same config, not the same numbers
    assert "(test accuracies up to 0.25 points apart over 2 seeds (training is not bit-reproducible here))" in \
        report.same_models_text(same, apart)
    assert report.same_models_text({}, runs) == ""


def test_selection_verdict_one_seed_and_missing():
    mt = _table([("selected@switch", 80.0, float("nan"), 1, 10), ("random0@switch", 81.0, float("nan"), 1, 10)])
    s = report.selection_verdict(mt)
    assert "against 0 of 1" in s and "one seed cannot separate" in s and "80.00 %" in s
    assert "cannot be compared" in report.selection_verdict(_table([("baseline", 90, 0, 1, 5)]))


@pytest.mark.parametrize("seconds,met", [(10.0, "met"), (50.0, "not met")])
def test_search_cost(seconds, met):
    sel = {"search_seconds": seconds, "search_cost_fraction": seconds / 200, "candidates": ["a", "b"],
           "params_resolved": {"sensitivity": {"ratios": [0.25, 0.5]}}}
    s = report.search_cost(sel, {"epoch_time_mean": 50.0, "train_time": 200.0, "epochs": 4})
    assert f"target <= 10 %: {met}." in s and f"{seconds / 50:.1f} baseline epochs" in s
    assert f"4 x 200 s; the sweep is {100 * seconds / 800:.1f} % of that" in s


def test_faithfulness_paragraph():
    m = {"n_layers": 5, "n_pairs": 2, "ratio": 0.5, "retrain_epochs": 1, "spearman_zero_shot": 0.7,
         "spearman_finetune": math.nan, "additivity_real_mean_abs_interaction": 0.25,
         "additivity_zero_shot_mean_abs_interaction": None, "additivity_finetune_mean_abs_interaction": 0.5,
         "seconds": 12.0}
    s = report.faithfulness(m, ["zero_shot", "finetune"])
    assert "0.70 (zero_shot; no bootstrap interval); undefined (finetune)" in s
    assert "0.25 points (real), n/a points (zero_shot), 0.50 points (finetune)" in s
    # every proxy named is defined, in the order given
    assert s.endswith(f"`zero_shot`: {report.PROXY_WORDS['zero_shot']}; `finetune`: {report.PROXY_WORDS['finetune']}.")
    from basisconv.core.sensitivity import PROXIES
    assert set(report.PROXY_WORDS) == set(PROXIES)  # a new proxy gets its words here too


@pytest.mark.parametrize("low,high,reading", [
    (0.35, 0.95, "above 0: the proxy's ranking of layers agrees with retraining's more than by chance"),
    (-0.2, 0.9, "it includes 0, so these layers cannot show"),
    (-0.9, -0.1, "below 0: the proxy's ranking of layers runs against")])
def test_spearman_reads_its_bootstrap_interval(low, high, reading):
    m = {"spearman_finetune": 0.7, "spearman_finetune_ci_low": low, "spearman_finetune_ci_high": high,
         "confidence": 0.95}
    s = report.spearman_text(m, "finetune")
    assert s.startswith(f"0.70 (finetune; 95 % bootstrap CI [{low:.2f}, {high:.2f}], ") and reading in s


def test_peer_and_onnx_paragraphs():
    bench = {"peers": [{"form": "basis", "precision": "fp32", "pass": "fwd+bwd", "median_measured_speedup": 1.6,
                        "median_share_of_theory": 0.8, "faster_than_dense": 7, "shapes_x_ratios": 8},
                       {"form": "tucker", "precision": "fp32", "pass": "fwd+bwd", "median_measured_speedup": 0.7,
                        "median_share_of_theory": 0.3, "faster_than_dense": 1, "shapes_x_ratios": 8},
                       {"form": "tucker", "precision": "fp32", "pass": "fwd", "median_measured_speedup": 9.0,
                        "median_share_of_theory": 0.9, "faster_than_dense": 8, "shapes_x_ratios": 8}],
             "onnx": [{"model": "selected_folded", "max_abs_diff": 2e-6, "onnxruntime_ms": 3.0, "pytorch_ms": 4.5,
                       "onnxruntime": "1.32.0", "threads": 2, "batch_size": 64}]}
    s = report.peers_text(bench)
    assert "fp32 fwd+bwd: basis 1.60x (80 % of its theory; faster than dense by median time on 7/8, no interval), tucker 0.70x" in s
    assert "9.00x" not in s  # forward-only rows are in the table, not the sentence
    assert "selected_folded max |diff| 2.0e-06, 3.0 ms in onnxruntime vs 4.5 ms in PyTorch" in report.onnx_text(bench)
    assert "empty" in report.peers_text({}) and "false" in report.onnx_text({"onnx": []})


def _targets(prec, misses, n_layers=4):
    n_kernel = sum(m["floor_fraction"] is not None and m["floor_fraction"] < 0.85 for m in misses)
    return {"precision": prec, "layers_fraction_of_theory": {
        "target": ">= 0.85", "n_layers": n_layers, "n_met": n_layers - len(misses), "min": 0.4, "median": 0.8,
        "met": not misses, "n_kernel_limited": n_kernel, "misses": misses},
        "all_layers_train_step_fraction_of_theory": {"target": ">= 0.90", "value": 0.55, "met": False,
                                                    "layer_sum_fraction_of_theory": 0.6},
        "fold_at_inference": []}


def _miss(layer, floor, limit, overhead=0.1):
    return {"layer": layer, "ratio": 0.25, "batch_size": 64, "fraction": 0.5, "floor_fraction": floor,
            "limit": limit, "excess_ms": {"kxk conv": 2.0, "1x1 mix": 0.5}, "overhead_ms": overhead}


def test_limits_paragraph_and_misses_table():
    bench = {"precision": "bf16", "targets_by_precision": {
        "fp32": _targets("fp32", [_miss("a", 0.9, "form overhead")]),
        "bf16": _targets("bf16", [_miss("a", 0.5, "kxk conv"), _miss("b", 0.6, "1x1 mix"),
                                  _miss("c", 0.95, "form overhead", overhead=1.2)])}}
    s = report.limits_text(bench)
    assert "**bf16** (the precision training runs in): 1 of 4 layer cases" in s
    assert "Of the 3 misses, 2 are kernel-limited" in s and "(kernel floor 0.50-0.60)" in s
    assert "by the rank-r k x k conv in 1 and by the 1 x 1 mix in 1; 1 is form overhead" in s
    assert "all-layers 0.55 (its layers alone predict 0.60)" in s
    assert "**fp32**: 3 of 4" in s and "Of the 1 miss, 0 are kernel-limited" in s
    table = report.misses_markdown(bench["targets_by_precision"]["bf16"])
    assert table.count("\n") == 4 and "| c " in table and "+1.20" in table and "kxk conv" in table
    assert report.misses_markdown(_targets("fp32", [])) == "No layer misses the per-layer target."
    near_zero = report.misses_markdown(_targets("fp32", [_miss("d", 0.5, "kxk conv", overhead=-0.004)]))
    assert "| 0.00 " in near_zero and "-0.00" not in near_zero
    md = report.targets_markdown(bench["targets_by_precision"]["bf16"])
    assert "1/4 layers (median 0.8, min 0.4); of the 3 misses, 2 kernel-limited" in md
    assert "0.55 (its layers alone predict 0.6)" in md and "precision" not in md


def test_run_names_text_defines_what_the_table_has():
    span = {"train": {"epochs": 25}, "basis": {"switch_epoch": 24, "ratio": 0.5, "front_budgets": [2.0, 3.0],
                                               "front_ratios": [0.25]}}
    sel = {"params_resolved": {"sensitivity": {"max_loss": 1.0}}}
    s = report.run_names_text(sel, span, ["baseline", "selected@switch", "random0~ml2@switch", "all_layers~r0.25@switch"])
    assert "snapshot at epoch 24" in s and "remaining 1 of 25 epochs" in s and "@scratch" not in s
    assert "`~ml2`: the selection at that loss budget" in s and "budget: 1)" in s and "ml3" not in s
    assert "`~r0.25`: basis layers on every candidate layer at that ratio (the main point's ratio: 0.5)" in s
    assert "include the 24 dense epochs before the switch" in s and "time per epoch compares" not in s
    assert "so they decide no claim" in s  # epoch times are measurements: the machine drifts between trainings
    bare = report.run_names_text({}, span, ["baseline", "selected@scratch"])
    assert "all 25 epochs" in bare and "~" not in bare and "dense epochs" not in bare and "@switch" not in bare
    assert report.run_names_text({}, span, ["baseline"]) == ""


def test_targets_note_names_the_reference_model():
    tg = {f"{m}_train_step_fraction_of_theory": {} for m in ("all_layers", "selected", "selected_switched")}
    assert "`selected_switched` against `selected`" in report.targets_note(tg)
    tg["all_layers_switched_train_step_fraction_of_theory"] = tg["selected_tuned_train_step_fraction_of_theory"] = {}
    assert "`all_layers_switched` against `all_layers`" in report.targets_note(tg)
    assert "`selected_tuned` against `selected`" in report.targets_note(tg)
    assert "all_layers` against" not in report.targets_note(tg)
    # the estimator is named (the verdict rows take another), with or without a derived model
    alone = report.targets_note({"selected_train_step_fraction_of_theory": {}})
    assert "median step time" in alone and "geometric mean" in alone and "against" not in alone
    assert report.targets_note(tg).startswith(alone)
    assert report.targets_note({"loader_fraction_of_step": {}}) == ""


def test_speed_text_carries_its_interval():
    bench = {"models": {"a.train_step": {"measured_speedup": 1.4, "speedup_geomean": 1.2, "speedup_low": 0.7,
                                         "speedup_high": 1.9, "theoretical_speedup": 1.76},
                        "b.train_step": {"measured_speedup": 1.1, "theoretical_speedup": 1.5}}}
    assert report._speed(bench, "a.train_step") == "1.20x [0.70x, 1.90x] measured vs 1.76x theoretical"
    assert report._speed(bench, "b.train_step") == "1.10x measured vs 1.50x theoretical"
    assert report._speed(bench, "c.inference") == "n/a"
