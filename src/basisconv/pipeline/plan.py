"""The basis stage's plan, written once: which runs it trains, with which layers, ratios and schedule (arXiv
2408.06024's comparison: all layers, the selection, and the comparison subsets at the selection's saving).

The basis stage trains this plan, and the report reads the same plan back from the selection and the basis section
the stage ran with (``claims.same_models`` finds the runs that train one model): one function, so the two cannot
differ.
"""
from __future__ import annotations

from basisconv.pipeline.variants import RunName, ratio_point, run_name, variant_of


def plan(B: dict, sel: dict, amp: bool = False) -> list[tuple]:
    """``(variant, schedule, layers, ratio)`` for every basis-stage variant (``B`` is already valid: every params
    rule lives in ``basisconv.pipeline.validate``, which ``params.resolve`` applies before a stage starts).

    ``amp``: the effective precision of the runs; ``baseline_fp32`` (the baseline in fp32, to check that bf16
    autocast leaves accuracy unchanged) is only planned when the others run in bf16, else it would be the baseline.
    """
    out = [("baseline", "-", None, None)] if "baseline" in B["variants"] else []
    if "baseline_fp32" in B["variants"] and amp:
        out.append(("baseline_fp32", "-", None, None))
    for v in ("all_layers", "selected"):
        if v not in B["variants"] or (v == "selected" and not sel["layers"]):
            continue  # an empty selection (no layer fits the loss budget) has nothing to train
        layers, ratio = (sel["candidates"], B["ratio"]) if v == "all_layers" else (sel["layers"], sel["ratios"])
        out += [(v, s, layers, ratio) for s in B["schedules"]]
    for name, c in sel["comparisons"].items():
        if variant_of(name).name in B["variants"]:
            out.append((name, B["comparison_schedule"], c["layers"], c["ratios"]))
    # the fronts' extra points (accuracy against size over several budgets), all with the comparison schedule
    cs = B["comparison_schedule"]
    if "all_layers" in B["variants"]:
        out += [(str(RunName("all_layers", point=ratio_point(q))), cs, sel["candidates"], q) for q in B["front_ratios"]]
    for point, f in sel.get("fronts", {}).items():
        if "selected" in B["variants"] and f["layers"]:
            out.append((run_name("selected", point=point), cs, f["layers"], f["ratios"]))
        out += [(run_name(name, point=point), cs, c["layers"], c["ratios"]) for name, c in f["comparisons"].items()
                if variant_of(name).name in B["variants"]]
    return out
