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


@pytest.mark.parametrize("n,word,want", [(1, "seed", "1 seed"), (3, "seed", "3 seeds"), (1200, "image", "1,200 images"),
                                         (0, "epoch", "0 epochs")])
@pytest.mark.timeout(60)
def test_plural(n, word, want):
    assert tables.plural(n, word) == want
