"""The figures of basisconv.pipeline.figures draw from small constructed frames, degenerate ones included (an empty
frame, an all-NaN column, a variant with one seed), write a PNG and mark what they promise (selected options,
clipped colour scale, the switch epoch, plain axes in millions); every figure the pipeline writes has a caption."""
import math

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest

from basisconv.pipeline import figures
from basisconv.pipeline.display import STAGES

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


@pytest.mark.timeout(120)
def test_caption_for_every_figure_the_pipeline_writes():
    paths = figures.figure_paths()
    declared = {figures.figure_name(p) for st in STAGES.values() for p in st.figures.values()}
    assert declared <= set(paths) and "data_samples" in paths
    assert set(figures.CAPTIONS) == set(paths), "CAPTIONS and the figures of the layout differ"
    for st in STAGES.values():
        for p in st.figures.values():
            text = figures.caption(p)  # by path, as the report names its copies
            assert text == figures.caption(figures.figure_name(p)) and len(text) > 80
            assert not any(ch.isdigit() for ch in text.replace("3x3", "")), f"{p}: numbers in a caption go stale"
    assert figures.figure_name("results/basis/pareto.png") == "basis_pareto"
    with pytest.raises(KeyError, match=r"no caption for figure 'basis_parreto'; known figures: .*basis_pareto"):
        figures.caption("basis_parreto")


@pytest.mark.timeout(60)
def test_seed_interval_known_answer():
    mean, low, high, n = figures.seed_interval([1.0, 2.0, 3.0, float("nan")], 0.95)
    # t_{0.975, 2} = 4.3027; sd = 1; half = 4.3027 / sqrt(3)
    assert n == 3 and mean == pytest.approx(2.0) and high - mean == pytest.approx(4.3027 / math.sqrt(3), rel=1e-3)
    assert low == pytest.approx(2 * mean - high)
    one = figures.seed_interval([5.0], 0.95)
    assert one[0] == 5.0 and math.isnan(one[1]) and math.isnan(one[2]) and one[3] == 1
    assert figures.seed_interval([], 0.95)[3] == 0
    assert 0 < figures.SEED_CONFIDENCE < 1


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
def test_sensitivity_bars_every_ratio_with_selected_marked(tmp_path, drawn):
    rows = sweep_rows()
    _png(figures.sensitivity_bars(rows, LAYERS, SELECTION, "finetune", tmp_path / "b.png"))
    ax = drawn[-1].axes[0]
    filled = [p for p in ax.patches if p.get_fill()]
    assert len(filled) == len(LAYERS) * 2  # one bar per (layer, ratio): every ratio of the sweep
    hatched = [p for p in ax.patches if not p.get_fill() and p.get_hatch()]
    assert len(hatched) == len(SELECTION["layers"])
    # the hatched bar of layer1.0.conv1 sits at its selected ratio 0.25 (left of the layer's centre), not at 0.5
    left = min(hatched, key=lambda p: p.get_x())
    assert left.get_x() + left.get_width() / 2 < 0
    assert [t.get_text() for t in drawn[-1].legends[0].get_texts()] == ["ratio 0.25", "ratio 0.5", "selected option"]
    _png(figures.sensitivity_bars(sweep_rows(nan_ci=True), LAYERS, SELECTION, "finetune", tmp_path / "n.png"))
    _png(figures.sensitivity_bars(rows.iloc[:0], LAYERS, SELECTION, "finetune", tmp_path / "e.png"))
    assert "no sweep rows" in drawn[-1].axes[0].texts[0].get_text()
    with pytest.raises(ValueError, match="unknown proxy 'other'; valid choices: finetune, zero_shot"):
        figures.sensitivity_bars(rows, LAYERS, SELECTION, "other", tmp_path / "x.png")
    with pytest.raises(ValueError, match="unknown proxy 'other'"):
        figures.sensitivity_heatmap(rows, LAYERS, ["finetune", "other"], SELECTION, tmp_path / "x.png")


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


def basis_runs():
    rows = []
    spec = {"baseline": (1.0e6, 40e6, [0.90, 0.91]), "baseline_fp32": (1.0e6, 40e6, [0.905, 0.908]),
            "all_layers@switch": (0.6e6, 25e6, [0.85, 0.86]), "selected@switch": (0.8e6, 33e6, [0.895]),
            "random0@switch": (0.8e6, 34e6, [0.88, 0.885]), "random1@switch": (0.81e6, 32e6, [0.87, 0.88]),
            "random0~ml2@switch": (0.7e6, 30e6, [0.86, 0.87]), "selected~ml2@switch": (0.7e6, 29e6, [0.88, 0.89])}
    for variant, (params, macs, accs) in spec.items():
        for seed, acc in enumerate(accs):
            rows.append({"variant": variant, "seed": seed, "key": f"k{seed}{len(variant)}", "test_acc": acc,
                         "params": params, "macs": macs, "epoch_time_mean": 2.0, "train_time": 10.0,
                         "basis_epoch_time": np.nan if variant == "all_layers@switch" else 1.5 + 0.1 * seed})
    return pd.DataFrame(rows)


@pytest.mark.timeout(120)
def test_basis_pareto_two_panels_in_millions_with_intervals(tmp_path, drawn):
    runs = basis_runs()
    _png(figures.basis_pareto(runs, 0.95, tmp_path / "p.png", title="synthetic"))
    fig = drawn[-1]
    fig.canvas.draw()
    a1, a2 = fig.axes[:2]
    assert a1.get_xlabel().startswith("parameters") and a2.get_xlabel().startswith("MACs")
    assert a1.xaxis.get_offset_text().get_text() == "" and a2.xaxis.get_offset_text().get_text() == ""
    lo, hi = a1.get_xlim()
    assert lo > 0.4 and hi < 1.2  # millions, and baseline_fp32 at the baseline's x does not widen the range
    # a front per variant trained at two budgets: selected, and random (its two subsets averaged at the main one)
    fronts = sorted((list(line.get_xdata()), list(line.get_ydata())) for line in a1.lines
                    if len(line.get_xdata()) == 2 and line.get_linestyle() == "-")
    assert len(fronts) == 2
    assert fronts[0][0] == pytest.approx([0.7, 0.8]) and fronts[0][1] == pytest.approx([88.5, 89.5])  # selected
    assert fronts[1][0] == pytest.approx([0.7, 0.805]) and fronts[1][1][1] == pytest.approx((88.25 + 87.5) / 2)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "selected@switch (n=1)" in labels and "baseline (n=2)" in labels
    _png(figures.basis_pareto(runs.iloc[:0], 0.95, tmp_path / "e.png"))
    _png(figures.basis_pareto(runs.assign(macs=np.nan), 0.95, tmp_path / "nan.png"))
    assert "no macs" in drawn[-1].axes[1].texts[0].get_text()
    with pytest.raises(KeyError, match="basis_pareto needs columns"):
        figures.basis_pareto(runs.drop(columns=["macs"]), 0.95, tmp_path / "x.png")


@pytest.mark.timeout(120)
def test_training_curves_from_the_histories_table(tmp_path, drawn):
    runs = basis_runs()
    hist = pd.DataFrame([{"variant": r.variant, "seed": r.seed, "epoch": e, "val_acc": r.test_acc - 0.1 * (3 - e),
                          "train_loss": 1.0} for r in runs.itertuples() for e in (1, 2, 3)])
    _png(figures.training_curves(hist, 1, 0.95, tmp_path / "c.png"))
    panels = [ax for ax in drawn[-1].axes if ax.get_visible()]
    # one panel per variant but the baseline, which is drawn in each for reference
    assert [ax.get_title() for ax in panels] == ["baseline_fp32 (n=2)", "all_layers@switch (n=2)",
                                                 "selected@switch (n=1)", "random0@switch (n=2)",
                                                 "random1@switch (n=2)", "random0~ml2@switch (n=2)",
                                                 "selected~ml2@switch (n=2)"]
    for ax in panels:
        assert any(list(line.get_xdata()) == [1, 1] for line in ax.lines), "switch epoch not marked"
        # a band for the baseline and one for the variant, none for a variant with one seed
        assert len(ax.collections) == (1 if ax.get_title().endswith("(n=1)") else 2)
        top = max(max(line.get_ydata()) for line in ax.lines if len(line.get_ydata()) == 3)
        assert 80 < top <= 100  # in %
    _png(figures.training_curves(hist.iloc[:0], 1, 0.95, tmp_path / "e.png"))
    _png(figures.training_curves(hist.assign(val_acc=np.nan), 0, 0.95, tmp_path / "n.png"))


@pytest.mark.timeout(120)
def test_epoch_times_per_variant(tmp_path, drawn):
    runs = basis_runs()
    _png(figures.epoch_times(runs, 0.95, 1, tmp_path / "t.png"))
    ax = drawn[-1].axes[0]
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks[-1] == "baseline (n=2)" and "all_layers@switch (n=0)" in ticks  # first variant on top; NaN: n=0
    assert any(t.get_text().strip() == "n/a" for t in ax.texts)
    _png(figures.epoch_times(runs.assign(basis_epoch_time=np.nan), 0.95, 1, tmp_path / "n.png"))
    _png(figures.epoch_times(runs.iloc[:0], 0.95, 1, tmp_path / "e.png"))


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
    _png(figures.measured_vs_theory(sp, "fp32", hw, tmp_path / "m.png", target_fraction=0.85, theory_min=1.5))
    fig = drawn[-1]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "layer1.0.conv1" in labels and "layer2.0.conv1" in labels and "theory (y = x)" in labels
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"  # speedups are ratios
    assert any(len(line.get_xdata()) > 2 and np.allclose(line.get_ydata(), line.get_xdata()) for line in ax.lines)
    _png(figures.speedup_vs_ratio(sp, "fp32", 16, tmp_path / "r.png"))
    fig = drawn[-1]
    assert [a.get_title() for a in fig.axes] == ["layer1", "layer2"] and fig._suptitle.get_text()
    dashed = [line for line in fig.axes[0].lines if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and list(dashed[0].get_ydata()) == [3.5, 1.8]  # the theory line of the layer
    _png(figures.speedup_vs_ratio(sp, "bf16", 16, tmp_path / "r0.png"))
    _png(figures.measured_vs_theory(sp.iloc[:0], "fp32", hw, tmp_path / "m0.png", target_fraction=0.85,
                                    theory_min=1.5))
    _png(figures.measured_vs_theory(sp.assign(floor_speedup=np.nan, speedup_high=np.nan), "fp32", hw,
                                    tmp_path / "mn.png", target_fraction=0.85, theory_min=1.5))
    peers = pd.DataFrame([{"layer": "layer1.0.conv1", "form": f, "precision": "fp32", "pass": p, "batch_size": 16,
                           "median_ms": ms, "iqr_ms": 0.1, "theoretical_speedup": t, "measured_speedup": 10.0 / ms}
                          for f, ms, t in (("dense", 10.0, 1.0), ("basis", 6.0, 2.0), ("tucker", 7.0, 2.2))
                          for p in ("fwd", "fwd+bwd")])
    _png(figures.peers(peers, hw, tmp_path / "p.png"))
    assert sorted(t.get_text() for t in drawn[-1].axes[0].get_legend().get_texts()) == ["basis", "theory", "tucker"]
    _png(figures.peers(pd.DataFrame(columns=["layer", "form"]), hw, tmp_path / "p0.png"))
    assert "no peer timings" in drawn[-1].axes[0].texts[0].get_text()
