"""The basis stage's plan, written once: which runs it trains, with which layers, ratios and schedule (arXiv
2408.06024's comparison: all layers, the selection, and the comparison subsets at the selection's saving).

The basis stage trains this plan, and the report reads the same plan back from the selection and the basis section
the stage ran with (``claims.same_models`` finds the runs that train one model): one function, so the two cannot
differ. Each schedule's runs use the selection of the model searched for it (``selection_model``): the training
schedules (scratch, switch) the sweep of seed 0's baseline at the switch epoch, the late conversion the final
baseline's.
"""
from __future__ import annotations

from basisconv.pipeline.variants import (VARIANTS, RunName, comparisons_of, ratio_point, run_name, subset_for,
                                         trained_schedules, variant_of)


def selection_model(schedule: str) -> str:
    """The searched model (``stages.sensitivity.MODELS``) whose selection the runs of ``schedule`` use."""
    return "switch" if schedule in ("scratch", "switch") else "final"


def selection_for(sel: dict, schedule: str) -> dict:
    """The selection (``selection.json``: the final model's at its top level, the switch-epoch snapshot's under
    ``at_switch``) that the runs of ``schedule`` use."""
    if selection_model(schedule) == "switch":
        if "at_switch" not in sel:
            raise ValueError(f"schedule {schedule!r} uses the selection searched at the switch epoch, which this "
                             "selection.json lacks: the sensitivity stage ran with other basis params; `dvc repro` "
                             "runs it again")
        return sel["at_switch"]
    return sel


def plan(B: dict, sel: dict, seed: int, amp: bool = False) -> list[tuple]:
    """``(run name, schedule, layers, ratio)`` of every basis-stage run of training seed ``seed`` (``B`` is already
    valid: every params rule lives in ``basisconv.pipeline.validate``, which ``params.resolve`` applies before a
    stage starts); the references have schedule ``"-"`` and no layers. A random comparison's layers depend on the
    seed (a draw per seed).

    ``amp``: the effective precision of the runs; ``baseline_fp32`` (the baseline in fp32, to check that bf16
    autocast leaves accuracy unchanged) is only planned when the others run in bf16, else it would be the baseline.
    """
    out = [("baseline", "-", None, None)] if "baseline" in B["variants"] else []
    if "baseline_fp32" in B["variants"] and amp:
        out.append(("baseline_fp32", "-", None, None))
    for s in trained_schedules(B):
        at = selection_for(sel, s)

        def name(base: str, point: str | None = None) -> str:
            return run_name(base, s, point, B)
        if s in B["schedules"]:
            if "all_layers" in B["variants"]:
                out.append((name("all_layers"), s, at["candidates"], B["ratio"]))
            if "selected" in B["variants"] and at["layers"]:  # an empty selection has nothing to train
                out.append((name("selected"), s, at["layers"], at["ratios"]))
        wanted = comparisons_of(B, s)
        for run, c in at["comparisons"].items():
            if variant_of(run).name in wanted:
                sub = subset_for(c, seed)
                out.append((name(run), s, sub["layers"], sub["ratios"]))
        if s != B.get("front_schedule"):
            continue
        # the fronts' extra points (accuracy against size over several budgets), random with its first draw only
        if "all_layers" in B["variants"]:
            out += [(name(str(RunName("all_layers", point=ratio_point(q)))), s, at["candidates"], q)
                    for q in B["front_ratios"]]
        for point, f in at.get("fronts", {}).items():
            if "selected" in B["variants"] and f["layers"]:
                out.append((name("selected", point), s, f["layers"], f["ratios"]))
            for run, c in f["comparisons"].items():
                v = variant_of(run)
                if v.name in wanted and (not v.per_seed or run == v.run_names(B)[0]):
                    sub = subset_for(c, seed)
                    out.append((name(run, point), s, sub["layers"], sub["ratios"]))
    return out


def trained_twice(entries) -> dict[str, str]:
    """``{run: earlier run}`` for every entry of ``plan`` that trains the same model as an earlier entry: the same
    layers in the same order at the same ratios, with the same schedule (the rest of a run's config is the basis
    section's, common to all; the order, because layers are converted and randomly initialised in it). The basis
    stage trains such a run once and reports it under both names.

    >>> trained_twice([("all_layers@late", "late", ["a", "b"], 0.5),
    ...                ("spectral@late", "late", ["a", "b"], {"a": .5, "b": .5}),
    ...                ("largest@late", "late", ["b", "a"], {"a": 0.5, "b": 0.5})])
    {'spectral@late': 'all_layers@late'}
    """
    first, out = {}, {}
    for name, schedule, layers, ratio in entries:
        if layers is None:  # the baselines: no basis layer
            continue
        model = (schedule, model_of(layers, ratio))
        if first.setdefault(model, name) != name:
            out[name] = first[model]
    return out


def model_of(layers, ratio) -> tuple:
    """A basis model's identity: ``((layer, ratio), ...)`` in conversion order, ``ratio`` one number or per layer."""
    return tuple((layer, float(ratio[layer] if isinstance(ratio, dict) else ratio)) for layer in layers)


__all__ = ["VARIANTS", "model_of", "plan", "selection_for", "selection_model", "trained_twice"]
