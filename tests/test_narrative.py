"""Known answers of the narrative's tables (its words are reviewed as golden pages, tests/test_golden.py)."""
import pandas as pd

from basisconv.pipeline import narrative


def _r(same_as):
    mt = pd.DataFrame({"variant": ["baseline", "all_layers@late", "spectral@late"], "test_acc_mean": [90.0, 88.0, 88.0],
                       "test_acc_std": [0.1, 0.2, 0.2], "seeds": [3, 3, 3], "delta_vs_baseline": [0.0, -2.0, -2.0],
                       "params": [1000, 600, 600], "compression": [1.0, 1.67, 1.67], "macs": [5e6, 3e6, 3e6]})
    runs = pd.DataFrame({"variant": ["baseline", "all_layers@late", "spectral@late"], "seed": [0, 0, 0],
                         "test_acc": [0.9, 0.88, 0.88], "same_as": ["", "", same_as]})
    return {"main_table": mt, "tables": {"runs": runs}}


def test_main_table_shows_one_row_per_model_and_macs_in_millions():
    t = narrative.main_table(_r("all_layers@late"))
    assert list(t.variant) == ["baseline", "all_layers@late = spectral@late"]
    assert list(t["MACs (M)"]) == ["5.0", "3.0"] and "epoch_time_s" not in t
    assert len(narrative.main_table(_r(""))) == 3


def test_selections_side_by_side():
    one = {"layers": ["a"], "ratios": {"a": 0.5}, "candidates": ["a", "b"], "predicted_loss": 0.4,
           "params_saved": 10, "macs_saved": 2e6}
    sel = {**one, "at_switch": dict(one, layers=["b"], ratios={"b": 0.25})}
    text = narrative.selections_text(sel)
    assert "`a`@0.5" in text and "`b`@0.25" in text and "different: 0 layer(s) in common" in text
    assert "are the same" in narrative.selections_text({**one, "at_switch": dict(one)})
