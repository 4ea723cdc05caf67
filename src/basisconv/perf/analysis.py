"""What the kept timings say: per-layer speedups with their IQR bounds, kernel floors, limiting steps and the
performance targets (arXiv 2408.06024's forward/backward cost claim, measured by ``basisconv.perf.bench``).

Everything here is computed from timing rows already taken (``bench.bench_layers`` / ``bench.bench_models`` rows, or
the benchmark stage's kept tables), never by timing: the benchmark stage does not import this module, so editing a
threshold (``TARGETS``) or a derived number re-times nothing, and the targets are held when a page is rendered.
"""
from __future__ import annotations


def targets_by_precision(layers: list[dict], models: list[dict], summary: dict, sel: dict | None = None) -> dict:
    """``{precision: targets(...)}`` for every precision timed, from the benchmark stage's kept rows (``layers``,
    ``models``) and summary (``loader``, ``trainer``, ``models_by_precision``, ``model_layers`` and the params it ran
    with: the memory format timed first)."""
    fmt = summary["params_resolved"]["benchmark"]["memory_formats"][0]
    return {prec: targets(layers, models, summary["loader"], summary["trainer"], memory_format=fmt,
                          precision=prec, model_layers=summary.get("model_layers"))
            for prec in summary.get("models_by_precision", {})}


# The performance targets, in one place: name -> (comparison, threshold). Recorded by the benchmark stage and
# reported, never asserted by a test (a timing depends on the machine).
LAYER_THEORY_MIN = 1.5  # layers whose theoretical speedup is at least this are held to the per-layer target
TARGETS = {
    "layers_fraction_of_theory": (">=", 0.85),
    "train_step_fraction_of_theory": (">=", 0.90),
    "loader_fraction_of_step": ("<=", 0.05),
    "trainer_overhead": ("<=", 0.10),
}


def _target(name: str, value) -> dict:
    op, thr = TARGETS[name]
    met = value is not None and (value >= thr if op == ">=" else value <= thr)
    return {"target": f"{op} {thr:.2f}", "value": value, "met": bool(met)}


def _precision(row: dict) -> str:
    return row.get("precision", "fp32")  # rows from before timings had a precision were fp32


def kernel_floors(layer_rows: list[dict], basis_variant: str = "basis_reduced") -> list[dict]:
    """The kernel floor of every timed basis layer: ``floor_speedup = t_dense / (t_kxk + t_mix)`` in fwd+bwd, the
    best speedup any execution form composed of its two kernels can reach (the one home of this number: the
    targets, gpu-check's table and the benchmark notebook read it from here).

    One row per ``basis_variant`` fwd+bwd row whose ``basis_kxk`` and ``basis_mix`` rows were timed with it (same
    layer, ratio, batch size, memory format and precision): those keys, the layer's ``theoretical_speedup``,
    ``dense_ms`` (from the basis row's own speedup), each kernel's time and MAC ratio (``kxk_ms``, ``kxk_theory``,
    ``mix_ms``, ``mix_theory``), ``kernels_ms`` and ``floor_speedup``."""
    def key(r):
        return r["layer"], r["ratio"], r["batch_size"], r.get("memory_format"), _precision(r)
    rows = [r for r in layer_rows if r["pass"] == "fwd+bwd"]
    parts = {(*key(r), r["variant"]): r for r in rows if r["variant"] in ("basis_kxk", "basis_mix")}
    out = []
    for r in rows:
        kxk, mix = (parts.get((*key(r), v)) for v in ("basis_kxk", "basis_mix"))
        if r["variant"] != basis_variant or kxk is None or mix is None:
            continue
        dense_ms = r["measured_speedup"] * r["median_ms"]
        kernels_ms = kxk["median_ms"] + mix["median_ms"]
        out.append({"layer": r["layer"], "ratio": r["ratio"], "batch_size": r["batch_size"],
                    "memory_format": r.get("memory_format"), "precision": _precision(r),
                    "theoretical_speedup": r["theoretical_speedup"], "dense_ms": dense_ms, "kxk_ms": kxk["median_ms"],
                    "mix_ms": mix["median_ms"], "kxk_theory": kxk["theoretical_speedup"],
                    "mix_theory": mix["theoretical_speedup"], "kernels_ms": kernels_ms,
                    "floor_speedup": dense_ms / kernels_ms})
    return out


def layer_misses(layer_rows: list[dict], threshold: float, memory_format: str = "channels_last",
                 precision: str = "fp32") -> list[dict]:
    """Every reduced layer held to the target (theoretical >= ``LAYER_THEORY_MIN``) that misses ``threshold``,
    with the measurement of its limiting step.

    ``floor_fraction``: the kernel floor ``t_dense / (t_kxk + t_mix)`` over theory (the best any execution form
    composed of the two kernels can reach). Below ``threshold`` the miss is a kernel limit and ``limit`` names the
    kernel with the larger excess over its MAC share of the dense time (``excess_ms``); otherwise ``limit`` is
    ``"form overhead"``, the form's time beyond the two kernels (``overhead_ms``).
    """
    rows = [r for r in layer_rows if r["pass"] == "fwd+bwd" and r["memory_format"] == memory_format
            and _precision(r) == precision]
    floors = {(f["layer"], f["ratio"], f["batch_size"]): f for f in kernel_floors(rows)}
    out = []
    for r in rows:
        if r["variant"] != "basis_reduced" or r["theoretical_speedup"] < LAYER_THEORY_MIN:
            continue
        frac = r["measured_speedup"] / r["theoretical_speedup"]
        if frac >= threshold:
            continue
        miss = {"layer": r["layer"], "ratio": r["ratio"], "batch_size": r["batch_size"], "fraction": frac,
                "floor_fraction": None, "limit": "not measured", "excess_ms": {}, "overhead_ms": None}
        f = floors.get((r["layer"], r["ratio"], r["batch_size"]))
        if f is not None:
            dense_ms = f["dense_ms"]
            # each kernel's time beyond its MAC share of the dense conv's time (theoretical_speedup = dense/its MACs)
            excess = {"kxk conv": f["kxk_ms"] - dense_ms / f["kxk_theory"],
                      "1x1 mix": f["mix_ms"] - dense_ms / f["mix_theory"]}
            floor = f["floor_speedup"] / r["theoretical_speedup"]
            miss.update(floor_fraction=floor, excess_ms=excess, overhead_ms=r["median_ms"] - f["kernels_ms"],
                        limit=max(excess, key=excess.get) if floor < threshold else "form overhead")
        out.append(miss)
    return out


def layer_sum_speedup(layer_rows: list[dict], model_layers: dict, base_ms: float, *, batch_size: int,
                      memory_format: str = "channels_last", precision: str = "fp32") -> float | None:
    """The train-step speedup a model would have if each converted layer saved exactly what it saves alone:
    ``base / (base - sum(t_dense - t_basis))`` over ``model_layers`` (``{layer: ratio}``), fwd+bwd at ``batch_size``.
    Measured close to this, a model's miss lies in its layers, not in the glue between them. ``None`` when a layer
    was not timed at that ratio and batch size."""
    by = {(r["layer"], r["ratio"]): r for r in layer_rows if r["variant"] == "basis_reduced"
          and r["pass"] == "fwd+bwd" and r["memory_format"] == memory_format and _precision(r) == precision
          and r["batch_size"] == batch_size}
    saved = 0.0
    for layer, ratio in model_layers.items():
        r = by.get((layer, ratio))
        if r is None:
            return None
        saved += r["measured_speedup"] * r["median_ms"] - r["median_ms"]
    return base_ms / (base_ms - saved) if saved < base_ms else None


def targets(layer_rows: list[dict], model_rows: list[dict], loader: dict, trainer: dict,
            memory_format: str = "channels_last", precision: str = "fp32",
            model_layers: dict | None = None) -> dict:
    """The performance targets of ``TARGETS`` (recorded, never asserted) in ``precision``, each with the measured
    value and whether it is met:

    - layers with theoretical speedup >= ``LAYER_THEORY_MIN``: measured fwd+bwd speedup as a fraction of theory
      (basis_reduced), and every miss with its limiting step (``layer_misses``);
    - every timed basis model's train step as a fraction of its theory (its MAC ratio to the baseline); with
      ``model_layers`` (``{model: {layer: ratio}}``) also the layer-sum bound (``layer_sum_speedup``);
    - data loading as a fraction of a baseline training step; trainer overhead.
    """
    layer_rows = [r for r in layer_rows if _precision(r) == precision]
    model_rows = [r for r in model_rows if _precision(r) == precision]
    big = [r for r in layer_rows if r["variant"] == "basis_reduced" and r["pass"] == "fwd+bwd"
           and r["memory_format"] == memory_format and r["theoretical_speedup"] >= LAYER_THEORY_MIN]
    frac = [r["measured_speedup"] / r["theoretical_speedup"] for r in big]
    step = {r["model"]: r for r in model_rows if r["mode"] == "train_step"}
    thr = TARGETS["layers_fraction_of_theory"][1]
    misses = layer_misses(layer_rows, thr, memory_format, precision)
    out = {"precision": precision, "layers_fraction_of_theory": {
        "target": f">= {thr:.2f} for layers with theoretical >= {LAYER_THEORY_MIN}x", "n_layers": len(big),
        "n_met": sum(f >= thr for f in frac), "min": min(frac) if frac else None,
        "median": sorted(frac)[len(frac) // 2] if frac else None, "met": bool(frac) and all(f >= thr for f in frac),
        "n_kernel_limited": sum(m["floor_fraction"] is not None and m["floor_fraction"] < thr for m in misses),
        "misses": misses}}
    base_ms = step["baseline"]["median_ms"]
    for name in step:
        if name == "baseline":
            continue
        theory = step[name]["theoretical_speedup"]  # the paper's MAC count of the model as timed
        t = _target("train_step_fraction_of_theory", step[name]["measured_speedup"] / theory)
        layers = (model_layers or {}).get(name)
        if layers is not None:
            bound = layer_sum_speedup(layer_rows, layers, base_ms, batch_size=step[name]["batch_size"],
                                      memory_format=memory_format, precision=precision)
            t["layer_sum_fraction_of_theory"] = None if bound is None else bound / theory
        out[f"{name}_train_step_fraction_of_theory"] = t
    out["loader_fraction_of_step"] = _target("loader_fraction_of_step", loader["median_ms"] / base_ms)
    out["trainer_overhead"] = _target("trainer_overhead", trainer["trainer_overhead"])
    # where a basis layer is slower than its folded (dense) form, the faster correct form is the folded conv
    slower = sorted({(r["layer"], r["ratio"]) for r in layer_rows if r["variant"] == "basis_reduced"
                     and r["pass"] == "fwd" and r["measured_speedup"] < 1.0 and r["memory_format"] == memory_format})
    out["fold_at_inference"] = [{"layer": l, "ratio": q} for l, q in slower]
    return out


SPEEDUP_KEYS = ["layer", "ratio", "batch_size", "memory_format", "precision"]


def basis_speedups(layer_rows: list[dict], memory_format: str, basis_variant: str = "basis_reduced"):
    """One row per timed ``basis_variant`` layer in fwd+bwd (the target's pass) and ``memory_format``: its keys
    (``SPEEDUP_KEYS``), ``theoretical_speedup``, ``measured_speedup = t_dense / t_basis`` with the interval the two
    timings' IQRs give,

        speedup_low = (t_dense - iqr_dense / 2) / (t_basis + iqr_basis / 2)
        speedup_high = (t_dense + iqr_dense / 2) / (t_basis - iqr_basis / 2)      (NaN when the divisor is <= 0)

    and the kernel floor ``t_dense / (t_kxk + t_mix)`` of ``kernel_floors`` (NaN where the two kernels were
    not timed): what the benchmark notebook's per-layer figures draw. A DataFrame (pandas is imported here only, so
    the GPU check, which needs the rest of this module, runs without it)."""
    import pandas as pd
    cols = [*SPEEDUP_KEYS, "theoretical_speedup", "measured_speedup", "median_ms", "iqr_ms", "dense_ms",
            "dense_iqr_ms", "speedup_low", "speedup_high", "floor_speedup"]
    rows = [r for r in layer_rows if r["pass"] == "fwd+bwd" and r.get("memory_format") == memory_format]
    dense = {(r["layer"], r["batch_size"], r["memory_format"], r["precision"]): r for r in rows
             if r["variant"] == "dense"}
    out = []
    for r in rows:
        d = dense.get((r["layer"], r["batch_size"], r["memory_format"], r["precision"]))
        if r["variant"] != basis_variant or d is None:
            continue
        slow, fast = r["median_ms"] + r["iqr_ms"] / 2, r["median_ms"] - r["iqr_ms"] / 2  # the basis time's IQR ends
        out.append({**{k: r[k] for k in SPEEDUP_KEYS}, "theoretical_speedup": r["theoretical_speedup"],
                    "measured_speedup": r["measured_speedup"], "median_ms": r["median_ms"], "iqr_ms": r["iqr_ms"],
                    "dense_ms": d["median_ms"], "dense_iqr_ms": d["iqr_ms"],
                    "speedup_low": (d["median_ms"] - d["iqr_ms"] / 2) / slow,
                    "speedup_high": (d["median_ms"] + d["iqr_ms"] / 2) / fast if fast > 0 else float("nan")})
    frame = pd.DataFrame(out, columns=cols[:-1])
    floors = pd.DataFrame(kernel_floors(rows, basis_variant), columns=[*SPEEDUP_KEYS, "floor_speedup"])
    return frame.merge(floors[[*SPEEDUP_KEYS, "floor_speedup"]], on=SPEEDUP_KEYS, how="left")[cols]
