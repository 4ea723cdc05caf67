"""Tables for people (basisconv.pipeline.tables): known inputs, the cells a reader sees."""
import math

import pandas as pd
import pytest

from basisconv.pipeline import tables


@pytest.mark.timeout(60)
def test_main_table_cells_for_people():
    df = pd.DataFrame({"variant": ["baseline", "selected@switch"], "test_acc_mean": [56.6125, 55.94],
                       "test_acc_std": [0.6516, 0.3881], "seeds": [3, 3], "delta_vs_baseline": [1.11e-14, -3.96],
                       "params": [2797610, 1613866], "macs": [139299328, 115051008], "compression": [1.0, 1.7334],
                       "epoch_time_s": [17.92, 16.55], "key": ["ab12", "cd34"], "data": ["synthetic", "synthetic"]})
    shown, constants = tables.for_people(df)
    assert constants == {"seeds": "3", "data": "synthetic"}  # said once, not in every row
    assert "key" not in shown.columns and "data" not in shown.columns
    row = shown.iloc[0].to_dict()
    assert row["test acc (%)"] == "56.61" and row["vs baseline (points)"] == "0.00"  # 0, not 1.11e-14
    assert shown.iloc[1]["vs baseline (points)"] == "-3.96" and shown.iloc[1]["params"] == "1,613,866"
    assert shown.iloc[1]["macs"] == "115,051,008" and shown.iloc[1]["compression"] == "1.73"
    text = tables.markdown(df)
    assert text.startswith("Every row: seeds 3; data synthetic.") and "e-14" not in text and "1.11" not in text


@pytest.mark.timeout(60)
def test_fractions_become_percent_and_nan_a_dash():
    shown, _ = tables.for_people(pd.DataFrame({"test_acc": [0.5865, math.nan], "val_acc": [0.5, 0.25]}))
    assert list(shown["test acc (%)"]) == ["58.65", "–"] and list(shown["val acc (%)"]) == ["50.00", "25.00"]


@pytest.mark.timeout(60)
def test_list_cells_element_by_element_and_interval_bounds_as_ratios():
    """``round_ms`` (one median per timing round) as the benchmark writes it and as its CSV reads back; the bounds
    of a speedup interval with the speedup's decimals."""
    for cell in ([320.2280724999582, 1350.7213689999844], "[320.2280724999582, 1350.7213689999844]"):
        shown, _ = tables.for_people(pd.DataFrame({"round_ms": [cell]}))
        assert shown["round_ms"][0] == "320.23, 1,350.72"
    shown, _ = tables.for_people(pd.DataFrame({"speedup_low": [1, 0.98765], "speedup_high": [1, 1.5123]}))
    assert list(shown["speedup_low"]) == ["1.00", "0.99"] and list(shown["speedup_high"]) == ["1.00", "1.51"]
    shown, _ = tables.for_people(pd.DataFrame({"round_ms": ["[nan, 2.0]"]}))
    assert shown["round_ms"][0] == "–, 2.00"
    shown, _ = tables.for_people(pd.DataFrame({"note": ["[see text]"]}))
    assert shown["note"][0] == "[see text]"  # a string that is not a list of numbers is left as it is


@pytest.mark.timeout(60)
def test_long_tables_are_summarised_with_the_csv_linked():
    rows = [{"layer": f"l{i}", "ratio": r, "variant": v, "pass": "fwd+bwd", "precision": "fp32",
             "theoretical_speedup": 2.0, "measured_speedup": 1.0 + i / 100} for i in range(30)
            for r in (0.25, 0.5) for v in ("dense", "basis_reduced")]
    text = tables.markdown(pd.DataFrame(rows), name="benchmark_layers", csv="benchmark_layers.csv", max_rows=40)
    assert "120 rows summarised in 2 groups." in text and "[benchmark_layers.csv](benchmark_layers.csv)" in text
    assert text.count("\n| fp32") == 0 and "1.15" in text  # the median of 1.00 .. 1.29; precision is constant
    cut = tables.markdown(pd.DataFrame({"x": range(50)}), name="other", max_rows=10)
    assert "The first 10 of 50 rows." in cut and cut.count("\n|") == 12  # header, rule and 10 rows


@pytest.mark.timeout(60)
def test_a_cut_table_says_every_row_only_of_what_every_row_of_the_whole_table_has():
    """The peers table's first 40 rows all had 32 input channels; its later rows do not, so no "Every row" for it."""
    df = pd.DataFrame({"in_channels": [32] * 40 + [64] * 10, "x": range(50), "device": ["cpu"] * 50})
    text = tables.markdown(df, name="other", max_rows=40)
    assert text.startswith("Every row: device cpu.") and "in_channels 32" not in text
    assert text.count("\n| 32 ") == 40  # shown in its column instead


@pytest.mark.timeout(60)
def test_constants_counts_and_the_other_columns_of_the_published_tables():
    """Known cells of the faithfulness, forms, history and ONNX tables (numpy scalars too: a constant column's value
    comes from ``unique``)."""
    import numpy as np
    shown, constants = tables.for_people(pd.DataFrame({
        "images": np.array([9984, 9984]), "n_val": np.array([2000, 2000]), "zero_shot_drop": [2.05, 1.9],
        "finetune_ci_low": [0.5302, -0.3], "pair_drop": [2.7, 0.1], "sum_of_singles": [1.85, -0.05],
        "fwd+bwd_ms_cat": [6.979, 12.5], "fwd_ms_basis": [0.8711, 1.011], "lr": [0.094, 3e-05],
        "val_loss": [1.72, 1.468], "onnx_bytes": [11180000, 5000000], "budget": [2496, 9984],
        "ort_speedup_over_pytorch": [1.224, 0.9]}))
    assert constants == {"images": "9,984", "n_val": "2,000"}
    want = {"zero_shot_drop": ["2.05", "1.90"], "finetune_ci_low": ["0.53", "-0.30"], "pair_drop": ["2.70", "0.10"],
            "sum_of_singles": ["1.85", "-0.05"], "fwd+bwd_ms_cat": ["6.98", "12.50"], "fwd_ms_basis": ["0.87", "1.01"],
            "lr": ["0.094", "3e-05"], "val_loss": ["1.720", "1.468"], "onnx_bytes": ["11,180,000", "5,000,000"],
            "budget": ["2,496", "9,984"], "ort_speedup_over_pytorch": ["1.22", "0.90"]}
    assert {c: list(shown[c]) for c in want} == want


@pytest.mark.parametrize("n,word,want", [(1, "seed", "1 seed"), (3, "seed", "3 seeds"), (1200, "image", "1,200 images"),
                                         (0, "epoch", "0 epochs")])
@pytest.mark.timeout(60)
def test_plural(n, word, want):
    assert tables.plural(n, word) == want
