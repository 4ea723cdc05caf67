"""The variant registry (basisconv.pipeline.variants): every variant named, styled, counted and, for the comparison
subsets, built at the selection's saving; the stages, estimate, report and figures read it."""
import pytest
import torch

from basisconv.core.counting import basis_params_saved
from basisconv.core.basis import resolve_rank
from basisconv.core.sensitivity import candidate_layers
from basisconv.core.surgery import conv_layers
from basisconv.experiment.models import build_model
from basisconv.pipeline import display, variants
from basisconv.pipeline import plan as basis_stage
from basisconv.pipeline.variants import COMPARISONS, VARIANTS, Match, RunName, variant_of

B = {"variants": ["baseline", "baseline_fp32", "all_layers", "selected"], "schedules": ["scratch", "switch"],
     "comparisons": {"switch": list(COMPARISONS)}, "switch_epoch": 2, "late_epoch": 3, "front_schedule": "switch",
     "random_subsets": 3, "ratio": 0.5, "coeff": "reduced", "front_budgets": [], "front_ratios": []}
SEEDS = [0, 1]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_maps_back_from_its_run_names(name):
    v = VARIANTS[name]
    assert v.kind in ("reference", "basis", "comparison")
    for run in v.run_names(B):
        for full in (run, f"{run}@switch", f"{run}@scratch"):
            assert variant_of(full) is v


def test_random_runs_and_unknown_names():
    assert VARIANTS["random"].run_names(B) == ["random0", "random1", "random2"]
    assert VARIANTS["random"].run_names({**B, "random_subsets": 0}) == []
    for bad in ("naive@switch", "randomx", "selected2", "largest1"):
        with pytest.raises(ValueError, match=f"unknown variant in run name '{bad}'; valid variants: baseline, "):
            variant_of(bad)


def test_styles_tell_runs_apart():
    runs = ["baseline", "baseline_fp32", "all_layers@switch", "selected@switch", "random0@switch", "random1@switch",
            "largest@switch", "spectral@switch"]
    styles = [display.style(r) for r in runs]
    assert len({(s["color"], s["marker"]) for s in styles}) == len(runs)
    assert all(s["label"] == r for s, r in zip(styles, runs))
    assert display.style("selected@scratch")["marker"] != display.style("selected@switch")["marker"]


@pytest.mark.parametrize("name", COMPARISONS)
def test_comparison_subsets_match_the_target(name):
    """Each comparison builder returns layers at swept ratios, saving what it says, near the selection's saving
    (``largest_macs``: its MAC saving); a random subset is a different draw for every seed."""
    torch.manual_seed(0)
    m = build_model("resnet18", width=8)
    recs = conv_layers(m, (1, 3, 32, 32))
    by = {r.name: r for r in recs}
    cands = candidate_layers(m, ["*"], ["conv1", "*downsample*"], [3])
    ratios, target, target_macs = [0.25, 0.5], 60_000, 2_000_000
    match = Match(recs, cands, target, ratios, "reduced", m, target_macs=target_macs)

    def saved(n, q):
        return basis_params_saved(by[n].in_channels, by[n].out_channels, 3, resolve_rank(by[n].out_channels, ratio=q))
    measure = "macs_saved" if name == "largest_macs" else "params_saved"
    px = {n: by[n].output_hw[0] * by[n].output_hw[1] if name == "largest_macs" else 1 for n in cands}
    biggest = max(saved(n, q) * px[n] for n in cands for q in ratios)
    for run in VARIANTS[name].run_names(B):
        s = VARIANTS[name].build(match, run, 0)
        assert s["layers"] and set(s["layers"]) <= set(cands) and set(s["ratios"].values()) <= set(ratios)
        assert s[measure] == sum(saved(n, q) * px[n] for n, q in s["ratios"].items())
        assert abs(s[measure] - (target_macs if name == "largest_macs" else target)) <= biggest, (run, s[measure])
    runs = variants.comparison_runs(B, match, SEEDS)
    assert list(runs) == [r for c in COMPARISONS for r in VARIANTS[c].run_names(B)]
    r0 = runs["random0"]["seeds"]
    assert r0["0"] != r0["1"] and r0["0"] != runs["random1"]["seeds"]["0"]  # a draw per seed and per run


def _selection(sub_by_seed=False, fronts=False):
    sub = {"layers": ["b"], "ratios": {"b": 0.25}}
    comps = {r: ({"seeds": {str(k): sub for k in SEEDS}} if VARIANTS[c].per_seed else sub)
             for c in COMPARISONS for r in VARIANTS[c].run_names(B)}
    sel = {"layers": ["a"], "ratios": {"a": 0.5}, "candidates": ["a", "b"], "comparisons": comps}
    if fronts:
        sel["fronts"] = {variants.budget_point(2.0): {"layers": ["a", "b"], "ratios": {"a": 0.5, "b": 0.5},
                                                      "comparisons": comps}}
    return {**sel, "at_switch": dict(sel)}


@pytest.mark.parametrize("chosen", [["baseline"], ["baseline", "selected"], ["all_layers"],
                                    ["baseline", "all_layers", "selected"]])
@pytest.mark.parametrize("comparisons", [{}, {"switch": ["random", "largest"]},
                                         {"switch": ["largest"], "late": list(COMPARISONS)}])
def test_the_estimates_count_is_what_the_stage_plans(chosen, comparisons):
    """runs_per_seed (the estimate's count, per schedule) equals the runs the basis stage plans for one seed."""
    Bc = {**B, "variants": chosen, "comparisons": comparisons, "schedules": ["scratch", "switch", "late"]}
    pl = basis_stage.plan(Bc, _selection(), 0)
    counts = variants.runs_per_seed(Bc)
    assert len(pl) == variants.trainings_per_seed(Bc) == sum(counts.values())
    for schedule, n in counts.items():
        assert n == sum(p[1] == schedule for p in pl), schedule
    assert {variant_of(p[0]).name for p in pl} <= set(chosen) | {c for cs in comparisons.values() for c in cs}
    for name, schedule, *_ in pl:  # every name carries its schedule, a switch run's its epoch
        assert name == "baseline" or name.endswith({"scratch": "@scratch", "switch": "@switch2",
                                                    "late": "@late"}[schedule])


@pytest.mark.timeout(60)
def test_front_points_are_planned_counted_and_named():
    """Extra budgets and ratios: the front schedule plans each front point once (random with its first draw), the
    estimate counts them, and every point's run name maps back to its variant and its point."""
    Bc = {**B, "variants": ["baseline", "all_layers", "selected"], "front_budgets": [2.0], "front_ratios": [0.25],
          "comparisons": {"switch": list(COMPARISONS)}}
    pl = basis_stage.plan(Bc, _selection(fronts=True), 0)
    assert len(pl) == variants.trainings_per_seed(Bc)
    front = [p for p in pl if variants.POINT in p[0]]
    assert len(front) == variants.front_runs_per_seed(Bc) > 0
    assert ("all_layers~r0.25@switch2", "switch", ["a", "b"], 0.25) in front
    assert ("selected~ml2@switch2", "switch", ["a", "b"], {"a": 0.5, "b": 0.5}) in front
    assert not any(p[0].startswith(("random1~", "random2~")) for p in front)
    for name, *_ in front:
        assert variants.point_of(name) in ("ml2", "r0.25")
        assert display.style(name)["color"] == display.style(name.replace("~ml2", "").replace("~r0.25", ""))["color"]


def test_the_same_model_trains_once():
    from basisconv.pipeline.plan import trained_twice
    entries = [("all_layers@late", "late", ["a", "b"], 0.5), ("spectral@late", "late", ["a", "b"], {"a": .5, "b": .5}),
               ("largest@late", "late", ["b", "a"], {"a": 0.5, "b": 0.5}),
               ("all_layers@scratch", "scratch", ["a", "b"], 0.5)]
    assert trained_twice(entries) == {"spectral@late": "all_layers@late"}  # order and schedule are the model's


def test_run_names_format_and_parse_one_way():
    for run in ("baseline", "selected@switch12", "random0~ml2@late", "all_layers~r0.25@scratch", "largest_macs@late"):
        assert str(RunName.parse(run)) == run
    assert RunName.parse("selected@switch12").epoch == 12 and RunName.parse("random3@late").draw == 3
    with pytest.raises(ValueError, match="unknown schedule 'skip'"):
        RunName.parse("selected@skip")
