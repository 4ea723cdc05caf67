"""Every rule a ``params.yaml`` must satisfy, checked in one place before any stage computes anything.

The pipeline of the arXiv 2408.06024 replication runs for hours on the paper profile; a value that only fails when
its stage is reached (``sensitivity.ratios: [2.0]`` after the baseline has trained, ``train.seeds: "12"`` read as
the characters of a string) wastes that time or, worse, silently does something else. ``validate(P)`` checks the
types and ranges of every key of the sections present in ``P`` and the rules between sections (when both are
present), and raises one ``ValueError`` that lists every problem as ``section.key = value: what is valid``.
``python -m basisconv.pipeline.params check`` runs it on the whole file (``make repro`` does, before ``dvc repro``), and every
stage's ``params.resolve`` runs it on the sections that stage reads.
"""
from __future__ import annotations

import math

CIFAR_TRAIN_IMAGES = 50_000  # the official training set, from which the val split is carved


def _int(v, lo=None, hi=None) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and (lo is None or v >= lo) and (hi is None or v <= hi)


def _num(v, lo=None, hi=None, lo_open=False, hi_open=False) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return False
    if lo is not None and (v <= lo if lo_open else v < lo):
        return False
    return hi is None or (v < hi if hi_open else v <= hi)


def _list(v, item, nonempty=True, distinct=False) -> bool:
    return (isinstance(v, list) and (len(v) > 0 or not nonempty) and all(item(x) for x in v)
            and (not distinct or len(set(map(repr, v))) == len(v)))


def _choices() -> dict:
    """The valid values of every choice key, from the registries that define them."""
    from basisconv.core.basis import COEFF_CHOICES, INIT_CHOICES
    from basisconv.perf.bench import MEMORY_FORMATS
    from basisconv.experiment.models import ARCHS
    from basisconv.perf.peers import PEERS
    from basisconv.core.selection import OBJECTIVES
    from basisconv.core.sensitivity import PROXIES
    from basisconv.pipeline.variants import COMPARISONS, SCHEDULES as BASIS_SCHEDULES, VARIANTS
    from basisconv.experiment.train import SCHEDULES
    return {"coeff": COEFF_CHOICES, "init": INIT_CHOICES, "memory_formats": tuple(MEMORY_FORMATS),
            "arch": tuple(ARCHS), "objective": OBJECTIVES, "proxies": tuple(PROXIES), "schedule": SCHEDULES,
            "basis_schedules": tuple(BASIS_SCHEDULES), "comparisons": COMPARISONS,
            "variants": tuple(v for v in VARIANTS if v not in COMPARISONS), "device": ("auto", "cpu", "cuda"),
            "peers": tuple(PEERS)}


def _rules(C: dict) -> dict:
    """``{section: {key: (test, what is valid)}}``."""
    ratio = (lambda v: _num(v, 0, 1, lo_open=True), "a number in (0, 1]")
    pos_int = (lambda v: _int(v, 1), "an int >= 1")
    nonneg_int = (lambda v: _int(v, 0), "an int >= 0")
    flag = (lambda v: isinstance(v, bool), "true or false")

    def one_of(name):
        return (lambda v: isinstance(v, str) and v in C[name], f"one of {', '.join(C[name])}")

    def some_of(name):
        return (lambda v: _list(v, lambda x: isinstance(x, str) and x in C[name], distinct=True),
                f"a non-empty list of distinct values from {', '.join(C[name])}")
    strs = (lambda v: _list(v, lambda x: isinstance(x, str), nonempty=False), "a list of strings (fnmatch patterns)")
    return {
        "data": {"source": (lambda v: isinstance(v, str) and bool(v), "a name in data/sources.yaml or synthetic"),
                 "val_size": pos_int, "split_seed": nonneg_int, "train_subset": (
                     lambda v: _int(v, 0), "an int >= 0 (0: every remaining training image)"),
                 "synthetic_per_class": pos_int},
        "model": {"arch": one_of("arch"), "width": pos_int},
        "train": {"epochs": pos_int, "batch_size": pos_int, "lr": (lambda v: _num(v, 0, lo_open=True), "a number > 0"),
                  "momentum": (lambda v: _num(v, 0, 1, hi_open=True), "a number in [0, 1)"), "nesterov": flag,
                  "weight_decay": (lambda v: _num(v, 0), "a number >= 0"),
                  "label_smoothing": (lambda v: _num(v, 0, 1, hi_open=True), "a number in [0, 1)"),
                  "schedule": one_of("schedule"), "warmup_epochs": (lambda v: _num(v, 0), "a number >= 0"),
                  "eval_batch_size": pos_int, "tta": flag,
                  "ema_decay": (lambda v: _num(v, 0, 1, hi_open=True), "a number in [0, 1) (0: no EMA)"),
                  "seeds": (lambda v: _list(v, lambda x: _int(x, 0), distinct=True),
                            "a non-empty list of distinct ints >= 0, e.g. [0, 1, 2]"),
                  "device": (lambda v: isinstance(v, str) and (v in C["device"] or v.startswith("cuda:")),
                             "auto, cpu, cuda or cuda:N"),
                  "amp": flag, "channels_last": flag, "threads": nonneg_int, "compile": flag, "processes": pos_int},
        "sensitivity": {"include": (lambda v: strs[0](v) and len(v) > 0, "a non-empty list of fnmatch patterns"),
                        "exclude": strs, "kernel_sizes": (lambda v: _list(v, lambda x: _int(x, 1)),
                                                          "a non-empty list of ints >= 1"),
                        "ratios": (lambda v: _list(v, ratio[0], distinct=True),
                                   "a non-empty list of distinct numbers in (0, 1]"),
                        "init": one_of("init"), "coeff": one_of("coeff"), "proxies": some_of("proxies"),
                        "bn_batches": pos_int, "batch_size": pos_int, "finetune_steps": pos_int,
                        "finetune_lr": (lambda v: _num(v, 0, lo_open=True), "a number > 0"),
                        "eval_size": (lambda v: _int(v, 0), "an int >= 0 (0: the whole val split)"),
                        "resolution_size": (lambda v: _int(v, 0),
                                            "an int >= 0 (0: none; else fewer than the sweep's images)"),
                        "confidence": (lambda v: _num(v, 0, 1, lo_open=True, hi_open=True), "a number in (0, 1)"),
                        "workers": pos_int, "selection_proxy": one_of("proxies"), "objective": one_of("objective"),
                        "max_loss": (lambda v: _num(v, 0), "a number >= 0 (points)")},
        "basis": {"ratio": ratio, "coeff": one_of("coeff"), "init": one_of("init"), "switch_epoch": pos_int,
                  "late_epoch": pos_int,
                  "schedules": (lambda v: _list(v, lambda x: x in C["basis_schedules"], nonempty=False,
                                                distinct=True),
                                f"a list of distinct values from {', '.join(C['basis_schedules'])}"),
                  "variants": (lambda v: _list(v, lambda x: x in C["variants"], nonempty=False, distinct=True),
                               f"a list of distinct values from {', '.join(C['variants'])}"),
                  "comparisons": (lambda v: isinstance(v, dict) and set(v) <= set(C["basis_schedules"]) and all(
                      _list(x, lambda c: c in C["comparisons"], nonempty=False, distinct=True) for x in v.values()),
                                  f"a mapping of schedules ({', '.join(C['basis_schedules'])}) to lists of "
                                  f"distinct comparisons from {', '.join(C['comparisons'])}"),
                  "front_schedule": (lambda v: v == "" or (isinstance(v, str) and v in C["basis_schedules"]),
                                     f"one of {', '.join(C['basis_schedules'])}, or \"\" (no fronts)"),
                  "random_subsets": nonneg_int,
                  "front_budgets": (lambda v: _list(v, lambda x: _num(x, 0, lo_open=True), nonempty=False,
                                                    distinct=True),
                                    "a list of distinct numbers > 0 (extra loss budgets in points; empty: none)"),
                  "front_ratios": (lambda v: _list(v, ratio[0], nonempty=False, distinct=True),
                                   "a list of distinct numbers in (0, 1] (extra all-layers ratios; empty: none)")},
        "faithfulness": {"layers": (lambda v: _int(v, 0), "an int >= 0 (0: every candidate layer)"),
                         "pairs": nonneg_int, "ratio": ratio, "epochs": pos_int, "train_subset": nonneg_int,
                         "lr": (lambda v: _num(v, 0, lo_open=True), "a number > 0"), "seed": nonneg_int,
                         "workers": pos_int},
        "benchmark": {"ratios": (lambda v: _list(v, ratio[0], distinct=True),
                                 "a non-empty list of distinct numbers in (0, 1]"),
                      "batch_sizes": (lambda v: _list(v, lambda x: _int(x, 1)), "a non-empty list of ints >= 1"),
                      "memory_formats": some_of("memory_formats"),
                      "min_run_time": (lambda v: _num(v, 0, lo_open=True), "a number of seconds > 0"),
                      "model_min_run_time": (lambda v: _num(v, 0, lo_open=True), "a number of seconds > 0"),
                      "model_repeats": pos_int,
                      "model_batch_size": pos_int, "overhead_steps": pos_int, "threads": nonneg_int,
                      "peers": (lambda v: _list(v, lambda x: x in C["peers"], nonempty=False, distinct=True),
                                f"a list of distinct values from {', '.join(C['peers'])} (empty: none)"),
                      "onnx": flag},
        "report": {"title": (lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty string")},
    }


def _cross(P: dict) -> list[str]:
    """Rules between keys: each applies when the sections it names are present."""
    errs = []
    T, S, B, F, D = (P.get(k) for k in ("train", "sensitivity", "basis", "faithfulness", "data"))
    if T:
        if _num(T.get("warmup_epochs")) and _int(T.get("epochs"), 1) and T["warmup_epochs"] > T["epochs"]:
            errs.append(f"train.warmup_epochs = {T['warmup_epochs']!r}: must be <= train.epochs = {T['epochs']}")
        if _int(T.get("batch_size"), 1) and _int(T.get("processes"), 1) and T["batch_size"] % T["processes"]:
            errs.append(f"train.batch_size = {T['batch_size']}: must be a multiple of train.processes = "
                        f"{T['processes']} (the global batch is split evenly over the processes)")
    used = set()  # the schedules some run trains with
    if B and isinstance(B.get("schedules"), list):
        used |= set(B["schedules"])
    if B and isinstance(B.get("comparisons"), dict):
        used |= {s for s, cs in B["comparisons"].items() if cs}
    for key, schedule in (("switch_epoch", "switch"), ("late_epoch", "late")):
        # the training schedules search the switch epoch's snapshot, so switch_epoch counts for scratch too
        needed = schedule in used or (key == "switch_epoch" and "scratch" in used)
        if T and B and needed and _int(B.get(key), 1) and _int(T.get("epochs"), 1) and B[key] >= T["epochs"]:
            errs.append(f"basis.{key} = {B[key]}: must be < train.epochs = {T['epochs']} (schedule {schedule} "
                        f"trains full-rank for {key} epochs, then converts)")
    if B and isinstance(B.get("front_schedule"), str) and B["front_schedule"] and B["front_schedule"] not in used:
        errs.append(f"basis.front_schedule = {B['front_schedule']!r}: must be a schedule some run trains with "
                    f"({', '.join(sorted(used)) or 'none'}), or \"\"")
    if B and not (B.get("front_schedule") or "") and (B.get("front_budgets") or B.get("front_ratios")):
        errs.append("basis.front_budgets / front_ratios are set but basis.front_schedule is empty: name the schedule "
                    "the fronts train with")
    if S and isinstance(S.get("proxies"), list) and isinstance(S.get("selection_proxy"), str) \
            and S["selection_proxy"] not in S["proxies"]:
        errs.append(f"sensitivity.selection_proxy = {S['selection_proxy']!r}: must be one of sensitivity.proxies "
                    f"= {S['proxies']}")
    if S and B and isinstance(B.get("front_budgets"), list) and S.get("max_loss") in B["front_budgets"]:
        errs.append(f"basis.front_budgets = {B['front_budgets']}: must not hold sensitivity.max_loss = "
                    f"{S['max_loss']} (the main selection is already that point of the front)")
    if B and isinstance(B.get("front_ratios"), list) and B.get("ratio") in B["front_ratios"]:
        errs.append(f"basis.front_ratios = {B['front_ratios']}: must not hold basis.ratio = {B['ratio']} (the "
                    "all-layers variant is already that point of the front)")
    if S and _int(S.get("resolution_size"), 1) and _int(S.get("eval_size"), 1) \
            and S["resolution_size"] >= S["eval_size"]:
        errs.append(f"sensitivity.resolution_size = {S['resolution_size']}: must be < sensitivity.eval_size = "
                    f"{S['eval_size']} (a subset of the sweep's images)")
    if S and F and isinstance(S.get("ratios"), list) and F.get("ratio") not in S["ratios"]:
        errs.append(f"faithfulness.ratio = {F.get('ratio')!r}: must be one of sensitivity.ratios = {S['ratios']} "
                    "(its proxy drops are the sweep's rows)")
    if D and D.get("source") != "synthetic" and _int(D.get("val_size"), 1) and _int(D.get("train_subset"), 0):
        if D["val_size"] >= CIFAR_TRAIN_IMAGES:
            errs.append(f"data.val_size = {D['val_size']}: must be < {CIFAR_TRAIN_IMAGES:,} (carved from the "
                        "training set)")
        elif D["train_subset"] > CIFAR_TRAIN_IMAGES - D["val_size"]:
            errs.append(f"data.train_subset = {D['train_subset']}: must be <= {CIFAR_TRAIN_IMAGES - D['val_size']:,}"
                        f" (the training images left after data.val_size = {D['val_size']:,}); 0 takes them all")
    return errs


def problems(P: dict) -> list[str]:
    """Every problem of the sections present in ``P`` (empty when valid)."""
    rules, errs = _rules(_choices()), []
    for section, keys in rules.items():
        given = P.get(section)
        if given is None:
            continue
        for key, (ok, valid) in keys.items():
            if key in given and not ok(given[key]):
                errs.append(f"{section}.{key} = {given[key]!r}: must be {valid}")
    if "profile" in P and not (isinstance(P["profile"], str) and P["profile"]):
        errs.append(f"profile = {P['profile']!r}: must be a non-empty string")
    return errs + _cross(P)


def validate(P: dict) -> dict:
    """``P`` if valid; else one ``ValueError`` naming every bad key, its value and what is valid."""
    errs = problems(P)
    if errs:
        raise ValueError(f"{len(errs)} invalid param(s) in params.yaml:\n  " + "\n  ".join(errs))
    return P
