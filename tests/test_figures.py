"""The figures of basisconv.pipeline.figures draw from small constructed frames, degenerate ones included (an empty
frame, an all-NaN column, a variant with one seed), write a PNG and mark what they promise (selected options,
clipped colour scale, the switch epoch, plain axes in millions, fronts in x order, at most eight legend entries)."""
import math

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest

from basisconv.pipeline import figures

LAYERS = ["layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1", "layer2.0.downsample.0"]
SELECTION = {"layers": ["layer1.0.conv1", "layer2.0.conv1"], "ratios": {"layer1.0.conv1": 0.25, "layer2.0.conv1": 0.5}}


@pytest.fixture
def drawn(monkeypatch):
    """Every figure saved during the test, kept open for inspection (``figures._save`` wrapped)."""
    from basisconv.experiment.io import save_figure
    kept = []

    def keep(fig, path):
        kept.append(fig)
        return save_figure(fig, path)

    monkeypatch.setattr(figures, "_save", keep)
    yield kept
    import matplotlib.pyplot as plt
    for f in kept:
        plt.close(f)


def _png(path):
    assert path.suffix == ".png" and path.is_file() and path.stat().st_size > 1000, path
    assert path.with_suffix(".svg").is_file()
    return path


def sweep_rows(nan_ci=False):
    rng = np.random.default_rng(0)
    rows = []
    for proxy in ("zero_shot", "finetune"):
        for layer in LAYERS:
            for ratio in (0.25, 0.5):
                d = float(rng.uniform(-0.5, 3.0))
                rows.append({"layer": layer, "ratio": ratio, "proxy": proxy, "delta_acc": d,
                             "ci_low": math.nan if nan_ci else d - 0.4, "ci_high": math.nan if nan_ci else d + 0.4})
    rows[0]["delta_acc"] = 40.0  # one extreme cell: the colour scale must not be set by it
    return pd.DataFrame(rows)


@pytest.mark.timeout(60)
def test_seed_interval_known_answer():
    mean, low, high, n = figures.seed_interval([1.0, 2.0, 3.0, float("nan")], 0.95)
    # t_{0.975, 2} = 4.3027; sd = 1; half = 4.3027 / sqrt(3)
    assert n == 3 and mean == pytest.approx(2.0) and high - mean == pytest.approx(4.3027 / math.sqrt(3), rel=1e-3)
    assert low == pytest.approx(2 * mean - high)
    one = figures.seed_interval([5.0], 0.95)
    assert one[0] == 5.0 and math.isnan(one[1]) and math.isnan(one[2]) and one[3] == 1
    assert figures.seed_interval([], 0.95)[3] == 0


@pytest.mark.timeout(120)
def test_data_samples_and_baseline_curves(tmp_path, drawn):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 3, 8, 8), dtype=np.uint8)
    labels = np.arange(30) % 9  # class 9 has no image: blank cells, no crash
    _png(figures.data_samples(images, labels, [f"c{i}" for i in range(10)], "synthetic", tmp_path / "s.png"))
    hist = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [2.0, 1.5, 1.2], "val_loss": [2.1, 1.7, 1.4],
                         "train_acc": [0.2, 0.4, 0.5], "val_acc": [0.18, 0.35, 0.45]})
    _png(figures.baseline_curves(hist, 7, "Baseline", tmp_path / "c.png", switch_epoch=2))
    fig = drawn[-1]
    assert "seed 7" in fig._suptitle.get_text()
    acc_ax = fig.axes[1]
    assert max(max(line.get_ydata()) for line in acc_ax.lines if len(line.get_ydata()) == 3) == pytest.approx(50.0)
    assert any(list(line.get_xdata()) == [2, 2] for line in acc_ax.lines), "switch epoch not marked"
    nan_val = hist.assign(val_loss=np.nan, val_acc=np.nan)
    _png(figures.baseline_curves(nan_val, 0, "Baseline", tmp_path / "nan.png"))
    _png(figures.baseline_curves(hist.iloc[:0], 0, "Baseline", tmp_path / "empty.png"))
    assert "no epochs" in drawn[-1].axes[0].texts[0].get_text()


@pytest.mark.timeout(120)
def test_sensitivity_heatmap_outlines_selection_and_clips(tmp_path, drawn):
    rows = sweep_rows()
    _png(figures.sensitivity_heatmap(rows, LAYERS, ["zero_shot", "finetune"], SELECTION, tmp_path / "h.png",
                                     selection_proxy="finetune"))
    fig = drawn[-1]
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 2 and all(not ax.xaxis._major_tick_kw.get("gridOn", False) for ax in panels)
    for ax in panels:
        outlines = [p for p in ax.patches if isinstance(p, matplotlib.patches.Rectangle) and not p.get_fill()]
        assert len(outlines) == len(SELECTION["layers"])
    cbar = [ax for ax in fig.axes if ax not in panels][0]
    assert "clipped" in cbar.get_ylabel()
    assert any(t.get_text() == "40.0" for t in panels[0].texts)  # the number itself is not clipped
    # no outlier: no clipping note
    _png(figures.sensitivity_heatmap(rows.assign(delta_acc=1.0), LAYERS, ["finetune"], SELECTION, tmp_path / "f.png"))
    assert "clipped" not in [ax for ax in drawn[-1].axes if not ax.get_title()][0].get_ylabel()
    _png(figures.sensitivity_heatmap(rows.iloc[:0], LAYERS, ["finetune"], {"layers": [], "ratios": {}},
                                     tmp_path / "e.png"))


@pytest.mark.timeout(120)
def test_faithfulness_and_additivity(tmp_path, drawn):
    table = pd.DataFrame({"layer": LAYERS[:3], "finetune_drop": [0.1, 1.0, 2.0], "finetune_ci_low": [0.0, 0.5, 1.5],
                          "finetune_ci_high": [0.2, 1.5, 2.5], "zero_shot_drop": [np.nan] * 3,
                          "zero_shot_ci_low": [np.nan] * 3, "zero_shot_ci_high": [np.nan] * 3,
                          "real_drop": [0.0, 0.8, 1.9], "real_ci_low": [np.nan, 0.3, 1.0],
                          "real_ci_high": [np.nan, 1.3, 2.8]})
    summary = {"spearman_finetune": 1.0, "spearman_finetune_ci_low": None, "spearman_finetune_ci_high": None}
    _png(figures.faithfulness_scatter(table, summary, ["finetune", "zero_shot"], 0.5, 1, 0.95, tmp_path / "f.png"))
    assert "Spearman 1.00" in drawn[-1].axes[0].get_title() and "n/a" in drawn[-1].axes[0].get_title()
    assert "no layer" in drawn[-1].axes[1].texts[0].get_text()  # the all-NaN proxy: a note, not a crash
    _png(figures.faithfulness_scatter(table.iloc[:0], {}, ["finetune"], 0.5, 1, 0.95, tmp_path / "e.png"))
    pairs = pd.DataFrame({"layer_a": ["a", "a"], "layer_b": ["b", "b"], "method": ["finetune", "retrain"],
                          "pair_drop": [1.0, 2.0], "sum_of_singles": [0.8, np.nan]})
    _png(figures.additivity(pairs, 0.5, tmp_path / "a.png"))
    _png(figures.additivity(pairs.iloc[:0], 0.5, tmp_path / "a0.png"))
    assert "no layer pair" in drawn[-1].axes[0].texts[0].get_text()


def front_points():
    """``figures.fronts`` points: the baseline, a selection at two budgets, all layers at two ratios."""
    rows = [("baseline", True, 90.0, 89.5, 90.5, 3, 1.0, 40.0, 1.0),
            ("selected@late", True, 89.8, 89.2, 90.4, 3, 0.8, 33.0, 0.9),
            ("selected@late", False, 89.0, 88.0, 90.0, 3, 0.7, 29.0, 0.85),
            ("all_layers@late", True, 87.0, np.nan, np.nan, 1, 0.6, 25.0, 0.8),
            ("all_layers@late", False, 84.0, 83.0, 85.0, 3, 0.4, 18.0, np.nan)]
    return pd.DataFrame(rows, columns=["family", "main", "acc", "acc_low", "acc_high", "n", "params", "macs",
                                       "train_time"])


@pytest.mark.timeout(120)
def test_fronts_one_line_per_family_in_x_order(tmp_path, drawn):
    pts = front_points()
    panels = [("params", "parameters (millions)"), ("macs", "MACs (millions)"), ("train_time", "time / dense")]
    _png(figures.fronts(pts, panels, tmp_path / "f.png", title="t"))
    fig = drawn[-1]
    fig.canvas.draw()
    a1, a2, a3 = fig.axes[:3]
    assert [a.get_xlabel() for a in (a1, a2, a3)] == [p[1] for p in panels]
    assert a1.xaxis.get_offset_text().get_text() == ""
    lines = {tuple(line.get_xdata()): list(line.get_ydata()) for line in a1.lines if line.get_linestyle() == "-"}
    assert lines[(0.7, 0.8)] == [89.0, 89.8] and lines[(0.4, 0.6)] == [84.0, 87.0]  # sorted by x
    assert len(a1.patches) == 1  # the baseline's interval as a band
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["baseline (n=3)", "selected@late (n=3)", "all_layers@late (n=3)", "other budgets"]
    # a point without a time is left out of that panel only
    assert {tuple(line.get_xdata()) for line in a3.lines if line.get_linestyle() == "-"} >= {(0.85, 0.9)}
    _png(figures.fronts(pts.iloc[:0], panels, tmp_path / "e.png"))
    _png(figures.fronts(pts.drop(columns=["train_time"]), panels, tmp_path / "n.png"))
    assert "no time / dense recorded" in drawn[-1].axes[2].texts[0].get_text()
    many = pd.concat([pts.assign(family=f"random{k}@late") for k in range(9)])
    _png(figures.fronts(many, panels, tmp_path / "m.png"))  # at most 8 legend entries; the rest named in a note
    fig = drawn[-1]
    notes = [t.get_text() for t in fig.texts if "not drawn" in t.get_text()]
    assert len(fig.legends[0].get_texts()) == 8 and len(notes) == 1 and "random7@late, random8@late" in notes[0]
    with pytest.raises(KeyError, match="fronts needs columns"):
        figures.fronts(pts.drop(columns=["acc_low"]), panels, tmp_path / "x.png")


@pytest.mark.timeout(120)
def test_paired_forest_groups_by_schedule(tmp_path, drawn):
    rows = pd.DataFrame([("all_layers@scratch = selected@scratch", "all_layers@scratch", "scratch", -0.5, -1.2, 0.2, 3),
                         ("selected@switch12", "selected@switch12", "switch", -0.2, -0.6, 0.2, 3),
                         ("random0@switch12", "random0@switch12", "switch", -1.5, np.nan, np.nan, 1)],
                        columns=list(figures.FOREST_COLUMNS))
    _png(figures.paired_forest(rows, tmp_path / "f.png", 1.0, group_titles={"switch": "switch at epoch 12"}))
    ax = drawn[-1].axes[0]
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks[0].startswith("all_layers@scratch = selected@scratch") and ticks[-1] == "random0@switch12 (n=1)"
    assert {t.get_text() for t in ax.texts} == {"scratch", "switch at epoch 12"}
    assert any(list(line.get_xdata()) == [-1.0, -1.0] for line in ax.lines)  # the margin
    _png(figures.paired_forest(rows.iloc[:0], tmp_path / "e.png", 1.0))


@pytest.mark.timeout(120)
def test_learning_curves_one_panel_per_method(tmp_path, drawn):
    hist = pd.DataFrame([{"variant": v, "seed": s, "epoch": e, "val_acc": 0.5 + 0.1 * e + 0.01 * s}
                         for v in ("baseline", "selected@scratch", "selected@switch2", "all_layers@scratch")
                         for s in (0, 1) for e in (1, 2, 3)])
    panels = {"selected": ["baseline", "selected@scratch", "selected@switch2", "selected@late"],
              "all_layers": ["baseline", "all_layers@scratch"], "largest": ["largest@late"]}
    _png(figures.learning_curves(hist, panels, {"selected@scratch": "tab:blue"}, 0.95, tmp_path / "c.png",
                                 marks={"switch": 2}))
    axes = [ax for ax in drawn[-1].axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["selected", "all_layers"]  # a panel with no history is left out
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == [
        "baseline (n=2)", "selected@scratch (n=2)", "selected@switch2 (n=2)"]
    assert any(list(line.get_xdata()) == [2, 2] for line in axes[0].lines)
    assert len(axes[0].collections) == 3 and 60 < max(axes[0].lines[0].get_ydata()) <= 100  # bands; in %
    _png(figures.learning_curves(hist.iloc[:0], panels, {}, 0.95, tmp_path / "e.png"))


def layer_rows():
    """bench_layers-like rows: dense, basis_reduced and its two kernels, two layers x two ratios x fwd+bwd."""
    rows = []
    for layer, dense_ms in (("layer1.0.conv1", 10.0), ("layer2.0.conv1", 8.0)):
        base = {"layer": layer, "pass": "fwd+bwd", "batch_size": 16, "memory_format": "channels_last",
                "precision": "fp32"}
        rows.append({**base, "variant": "dense", "ratio": None, "median_ms": dense_ms, "iqr_ms": 1.0,
                     "theoretical_speedup": 1.0, "measured_speedup": 1.0})
        for ratio, theory in ((0.25, 3.5), (0.5, 1.8)):
            ms = dense_ms / theory * 1.3
            rows.append({**base, "variant": "basis_reduced", "ratio": ratio, "median_ms": ms, "iqr_ms": 0.2,
                         "theoretical_speedup": theory, "measured_speedup": dense_ms / ms})
            for part, share in (("basis_kxk", 0.6), ("basis_mix", 0.3)):
                rows.append({**base, "variant": part, "ratio": ratio, "median_ms": ms * share, "iqr_ms": 0.1,
                             "theoretical_speedup": 2 * theory, "measured_speedup": dense_ms / (ms * share)})
        rows.append({**base, "pass": "fwd", "variant": "basis_reduced", "ratio": 0.5, "median_ms": 1.0,
                     "iqr_ms": 0.1, "theoretical_speedup": 1.8, "measured_speedup": 3.0})  # not the target's pass
    return rows


@pytest.mark.timeout(180)
def test_basis_speedups_and_timing_figures(tmp_path, drawn):
    from basisconv.perf.analysis import basis_speedups
    sp = basis_speedups(layer_rows(), "channels_last")
    assert len(sp) == 4 and (sp.speedup_low < sp.measured_speedup).all() and (sp.measured_speedup < sp.speedup_high).all()
    r = sp[(sp.layer == "layer1.0.conv1") & (sp.ratio == 0.25)].iloc[0]
    assert r.floor_speedup == pytest.approx(10.0 / (0.9 * r.median_ms))  # t_dense / (t_kxk + t_mix)
    assert r.speedup_low == pytest.approx(9.5 / (r.median_ms + 0.1))
    assert len(basis_speedups(layer_rows(), "contiguous")) == 0
    hw = {"device_name": "test cpu", "threads": 2}
    _png(figures.speedup_vs_ratio(sp, "fp32", 16, ["layer1.0.conv1"], tmp_path / "r.png"))
    fig = drawn[-1]
    assert [a.get_title() for a in fig.axes] == ["layer1", "layer2"] and fig._suptitle.get_text()
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["layer2.0.conv1 (not a candidate)"]
    dashed = [line for line in fig.axes[0].lines if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and list(dashed[0].get_ydata()) == [3.5, 1.8]  # the theory line of the layer
    _png(figures.speedup_vs_ratio(sp, "bf16", 16, [], tmp_path / "r0.png"))
    peers = pd.DataFrame([{"layer": "layer1.0.conv1", "form": f, "precision": "fp32", "pass": p, "batch_size": 16,
                           "median_ms": ms, "iqr_ms": 0.1, "theoretical_speedup": t, "measured_speedup": 10.0 / ms}
                          for f, ms, t in (("dense", 10.0, 1.0), ("basis", 6.0, 2.0), ("tucker", 7.0, 2.2))
                          for p in ("fwd", "fwd+bwd")])
    _png(figures.peers(peers, hw, tmp_path / "p.png"))
    assert sorted(t.get_text() for t in drawn[-1].axes[0].get_legend().get_texts()) == ["basis", "theory", "tucker"]
    _png(figures.peers(pd.DataFrame(columns=["layer", "form"]), hw, tmp_path / "p0.png"))
    assert "no peer timings" in drawn[-1].axes[0].texts[0].get_text()
