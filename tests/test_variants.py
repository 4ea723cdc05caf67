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
from basisconv.pipeline.variants import COMPARISONS, VARIANTS, Match, variant_of

B = {"variants": list(VARIANTS), "schedules": ["scratch", "switch"], "comparison_schedule": "switch", "switch_epoch": 2,
     "random_subsets": 3, "ratio": 0.5, "coeff": "reduced", "front_budgets": [], "front_ratios": []}


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
    """Each comparison builder returns layers at swept ratios, saving what it says, near the selection's saving."""
    torch.manual_seed(0)
    m = build_model("resnet18", width=8)
    recs = conv_layers(m, (1, 3, 32, 32))
    by = {r.name: r for r in recs}
    cands = candidate_layers(m, ["*"], ["conv1", "*downsample*"], [3])
    ratios, target = [0.25, 0.5], 60_000
    match = Match(recs, cands, target, ratios, "reduced", m)

    def saved(n, q):
        return basis_params_saved(by[n].in_channels, by[n].out_channels, 3, resolve_rank(by[n].out_channels, ratio=q))
    biggest = max(saved(n, q) for n in cands for q in ratios)
    for run in VARIANTS[name].run_names(B):
        s = VARIANTS[name].build(match, run)
        assert s["layers"] and set(s["layers"]) <= set(cands) and set(s["ratios"].values()) <= set(ratios)
        assert s["params_saved"] == sum(saved(n, q) for n, q in s["ratios"].items())
        assert abs(s["params_saved"] - target) <= biggest, (run, s["params_saved"])
    runs = variants.comparison_runs(B, match)
    assert list(runs) == [r for c in COMPARISONS for r in VARIANTS[c].run_names(B)]
    assert runs["random0"] != runs["random1"]  # different seeds, different subsets


@pytest.mark.parametrize("chosen", [["baseline"], ["baseline", "selected"], ["all_layers", "random"],
                                    ["baseline", "all_layers", "selected", "random", "largest", "spectral"]])
def test_the_estimates_count_is_what_the_stage_plans(chosen):
    """trainings_per_seed (the estimate's count) equals the runs the basis stage plans for one seed."""
    sel = {"layers": ["a"], "ratios": {"a": 0.5}, "candidates": ["a", "b"],
           "comparisons": {r: {"layers": ["b"], "ratios": {"b": 0.5}} for c in COMPARISONS
                           for r in VARIANTS[c].run_names(B)}}
    Bc = {**B, "variants": chosen}
    plan = basis_stage.plan(Bc, sel)
    assert len(plan) == variants.trainings_per_seed(Bc)
    assert {variant_of(p[0]).name for p in plan} == set(chosen)
    # the switch runs (costed from the switch epoch on) are the planned basis runs of the switch schedule, and
    # only where a baseline of the seed gives them their start
    switch = [p for p in plan if p[1] == "switch" and p[2] is not None]
    assert variants.switch_runs_per_seed(Bc) == (len(switch) if "baseline" in chosen and Bc["switch_epoch"] > 0
                                                 else 0)
    assert variants.switch_runs_per_seed({**Bc, "switch_epoch": 0}) == 0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("chosen", [["baseline", "all_layers", "selected"],
                                    ["baseline", "all_layers", "selected", "random", "largest", "spectral"]])
def test_front_points_are_planned_counted_and_named(chosen):
    """Extra budgets and ratios: the stage plans each front point once, the estimate counts them, and every point's
    run name maps back to its variant and its point."""
    sub = {"layers": ["b"], "ratios": {"b": 0.25}}
    sel = {"layers": ["a"], "ratios": {"a": 0.5}, "candidates": ["a", "b"],
           "comparisons": {r: sub for c in COMPARISONS for r in VARIANTS[c].run_names(B)},
           "fronts": {variants.budget_point(2.0): {"layers": ["a", "b"], "ratios": {"a": 0.5, "b": 0.5},
                                                   "comparisons": {r: sub for c in COMPARISONS
                                                                   for r in VARIANTS[c].run_names(B)}}}}
    Bc = {**B, "variants": chosen, "front_budgets": [2.0], "front_ratios": [0.25]}
    plan = basis_stage.plan(Bc, sel)
    assert len(plan) == variants.trainings_per_seed(Bc)
    front = [p for p in plan if variants.POINT in p[0]]
    assert len(front) == variants.front_runs_per_seed(Bc) > 0
    assert ("all_layers~r0.25", "switch", ["a", "b"], 0.25) in front
    assert ("selected~ml2", "switch", ["a", "b"], {"a": 0.5, "b": 0.5}) in front
    for name, *_ in front:
        assert variant_of(name).name in chosen and variants.point_of(f"{name}@switch") in ("ml2", "r0.25")
        assert display.style(f"{name}@switch")["color"] == display.style(
            f"{name.partition(variants.POINT)[0]}@switch")["color"]  # a front keeps its variant's colour
    switch = [p for p in plan if p[1] == "switch" and p[2] is not None]
    assert variants.switch_runs_per_seed(Bc) == len(switch)
