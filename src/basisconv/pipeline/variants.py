"""The basis stage's variants and schedules by name (arXiv 2408.06024's comparison): what ``basis.variants``,
``basis.schedules`` and ``basis.comparisons`` may hold, which runs each trains and, for the comparison subsets, how
each subset is built; and ``RunName``, the one format of a run name. Its own module, so that ``validate``, the
estimate, the plan, the report and the figures read one registry without importing a stage. How a variant looks
(its words, colour and marker) is ``basisconv.pipeline.display``'s, not computation.

Schedules (``SCHEDULES``): when the basis layers arrive in a training of ``train.epochs`` epochs.

- ``scratch``: from step 0 (every epoch trains basis layers);
- ``switch``: after ``basis.switch_epoch`` dense epochs (the paper's skip schedule; the run name carries the epoch,
  ``selected@switch12``);
- ``late``: after ``basis.late_epoch`` dense epochs, near the end: post-training conversion with a short fine-tune.

Variants are of three kinds:

- ``reference``: the baseline (and ``baseline_fp32``, the baseline in fp32 when the others train under bf16);
- ``basis``: basis layers on all candidate layers (the naive use) or on the selected layers, trained with every
  schedule of ``basis.schedules``;
- ``comparison``: a subset matched to the selection's saving (``basisconv.core.selection.matched_subset``,
  ``basisconv.core.spectral``), trained with the schedules that ``basis.comparisons`` lists it under. ``random``
  trains ``random0`` ... ``random<k-1>`` (``basis.random_subsets``), each a different draw for every training seed
  (``random_seed``), so the random rows' intervals cover draws as well as seeds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

# schedule -> the basis-section key of the epoch its basis layers arrive after (None: from step 0)
SCHEDULES = {"scratch": None, "switch": "switch_epoch", "late": "late_epoch"}


def start_epoch(B: dict, schedule: str) -> int:
    """The dense epochs a run of ``schedule`` trains before its basis layers arrive (0 for ``scratch``)."""
    key = SCHEDULES[schedule]
    return 0 if key is None else int(B[key])


@dataclass(frozen=True)
class Match:
    """What a comparison subset is matched with: the candidate layers and their cost records, the selection's
    parameter saving, the ratios it may use, the coefficient form, and the trained baseline (for data-free criteria)."""
    records: list
    layers: list[str]
    target_params: int
    ratios: list[float]
    coeff: str
    net: object
    target_macs: int = 0  # the selection's MAC saving (``largest_macs`` is matched to it)


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str  # "reference", "basis" or "comparison"
    runs: Callable[[dict], list[str]] | None = None  # comparison: the run names it trains, from the basis section
    build: Callable[[Match, str, int], dict] | None = None  # comparison: the subset of one run name and seed
    per_seed: bool = False  # comparison: its subset depends on the training seed (a draw per seed)

    def run_names(self, B: dict) -> list[str]:
        return self.runs(B) if self.runs is not None else [self.name]


def random_seed(run: str, seed: int) -> int:
    """The draw of comparison run ``random<k>`` for training seed ``seed``: a different one for every seed and k."""
    return 1000 * int(run[len("random"):]) + int(seed)


def _random_subset(m: Match, run: str, seed: int) -> dict:
    from basisconv.core.selection import matched_subset
    return matched_subset(m.records, m.layers, m.target_params, m.ratios, order="random",
                          seed=random_seed(run, seed), coeff=m.coeff)


def _largest_subset(m: Match, run: str, seed: int) -> dict:
    from basisconv.core.selection import matched_subset
    return matched_subset(m.records, m.layers, m.target_params, m.ratios, order="largest", coeff=m.coeff)


def _largest_macs_subset(m: Match, run: str, seed: int) -> dict:
    from basisconv.core.selection import matched_subset
    return matched_subset(m.records, m.layers, m.target_macs, m.ratios, order="largest", coeff=m.coeff,
                          measure="macs")


def _spectral_subset(m: Match, run: str, seed: int) -> dict:
    from basisconv.core.basis import resolve_rank
    from basisconv.core.counting import basis_params_saved
    from basisconv.core.spectral import spectral_subset
    sub = spectral_subset(m.net, m.layers, m.target_params, m.ratios, coeff=m.coeff)
    recs = {r.name: r for r in m.records}

    def macs(n, q):  # per output pixel a conv (no bias) multiplies each weight once, as matched_subset counts
        r = recs[n]
        saved = basis_params_saved(r.in_channels, r.out_channels, r.kernel_size[0],
                                   resolve_rank(r.out_channels, ratio=q), m.coeff)
        return saved * r.output_hw[0] * r.output_hw[1]
    return {**sub, "macs_saved": sum(macs(n, q) for n, q in sub["ratios"].items()), "matched_on": "params"}


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("baseline", "reference"),
    Variant("baseline_fp32", "reference"),
    Variant("all_layers", "basis"),
    Variant("selected", "basis"),
    Variant("random", "comparison", runs=lambda B: [f"random{k}" for k in range(B["random_subsets"])],
            build=_random_subset, per_seed=True),
    Variant("largest", "comparison", build=_largest_subset),
    Variant("largest_macs", "comparison", build=_largest_macs_subset),
    Variant("spectral", "comparison", build=_spectral_subset),
)}
COMPARISONS = tuple(n for n, v in VARIANTS.items() if v.kind == "comparison")


POINT = "~"  # run names of a front's extra points: ``selected~ml2@switch``, ``random0~ml2@switch``, ``all_layers~r0.25``


def budget_point(max_loss: float) -> str:
    """The point label of the selection at an extra loss budget (``basis.front_budgets``): ``ml2``, ``ml0.5``."""
    return f"ml{max_loss:g}"


def ratio_point(ratio: float) -> str:
    """The point label of all layers at an extra ratio (``basis.front_ratios``): ``r0.25``."""
    return f"r{ratio:g}"


@dataclass(frozen=True)
class RunName:
    """The one format of a run name, ``<variant>[<draw>][~<point>][@<schedule>]``: ``baseline``, ``selected@switch``,
    ``random2~ml2@switch``, ``all_layers~r0.25@scratch``. ``draw``: the index of a comparison that trains several
    runs (``random<k>``); ``point``: a front's extra point (``budget_point``, ``ratio_point``), "" for the main one;
    ``schedule``: one of ``SCHEDULES``, "" for the references. ``str()`` formats it, ``RunName.parse`` reads it back
    (and refuses an unknown variant); nothing else builds or splits a run name."""
    variant: str
    schedule: str = ""
    point: str = ""
    draw: int | None = None
    epoch: int | None = None  # a switch schedule's switch epoch, written into the name (``switch12``)

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; valid variants: {', '.join(VARIANTS)}")
        if self.schedule and self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; valid schedules: {', '.join(SCHEDULES)}")

    @property
    def base(self) -> str:
        """The name without point and schedule (``random2``): a comparison run of ``comparison_runs``."""
        return self.variant + ("" if self.draw is None else str(self.draw))

    @property
    def kind(self) -> str:
        return VARIANTS[self.variant].kind

    @property
    def label(self) -> str:
        """The schedule as the name writes it: ``scratch``, ``switch12``, ``late``; "" for a reference."""
        return self.schedule + (str(self.epoch) if self.schedule == "switch" and self.epoch is not None else "")

    def __str__(self) -> str:
        return self.base + (f"{POINT}{self.point}" if self.point else "") + (f"@{self.label}" if self.schedule
                                                                            else "")

    def at(self, schedule: str | None = None, point: str | None = None, epoch: int | None = None) -> "RunName":
        """The same run at another schedule (and switch epoch) or point."""
        schedule = self.schedule if schedule is None else schedule
        return RunName(self.variant, schedule, self.point if point is None else point, self.draw,
                       epoch if epoch is not None else (self.epoch if schedule == self.schedule else None))

    @classmethod
    def parse(cls, run: str) -> "RunName":
        name, _, label = str(run).partition("@")
        base, _, point = name.partition(POINT)
        schedule, epoch = label, None
        if label.startswith("switch") and label[len("switch"):].isdigit():
            schedule, epoch = "switch", int(label[len("switch"):])
        for v in VARIANTS.values():
            if base == v.name:
                return cls(v.name, schedule, point, None, epoch)
            if v.runs is not None and base.startswith(v.name) and base[len(v.name):].isdigit():
                return cls(v.name, schedule, point, int(base[len(v.name):]), epoch)
        raise ValueError(f"unknown variant in run name {run!r}; valid variants: {', '.join(VARIANTS)}")


def run_name(base: str, schedule: str = "", point: str | None = None, B: dict | None = None) -> str:
    """The run name of the comparison or variant ``base`` (``random2``, ``selected``, ``all_layers~r0.25``) at
    ``schedule`` and ``point`` (None: the point ``base`` names, if any); ``B``: the basis section, whose
    ``switch_epoch`` a switch run's name carries."""
    epoch = start_epoch(B, schedule) if B is not None and schedule == "switch" else None
    return str(RunName.parse(base).at(schedule, point, epoch))


def point_of(run: str) -> str:
    """The front point of a run name (``ml2`` of ``selected~ml2@switch``), ``""`` for the main point."""
    return RunName.parse(run).point


def variant_of(run: str) -> Variant:
    """The variant of a run name such as ``selected@switch``, ``random2@switch``, ``largest~ml2@switch`` or
    ``baseline``."""
    return VARIANTS[RunName.parse(run).variant]


def comparison_runs(B: dict, match: Match, seeds) -> dict[str, dict]:
    """Every comparison run of the basis section ``B`` with its subset, ``{run name: subset}``, in registry order
    (all comparisons are built, cheap as they are, whether or not a schedule trains them). A comparison drawn per
    seed (``random<k>``) holds ``{"seeds": {seed: subset}}`` for every training seed of ``seeds``."""
    out = {}
    for c in COMPARISONS:
        v = VARIANTS[c]
        for run in v.run_names(B):
            out[run] = ({"seeds": {str(s): v.build(match, run, s) for s in seeds}} if v.per_seed
                        else v.build(match, run, 0))
    return out


def subset_for(subset: dict, seed: int) -> dict:
    """A comparison subset of ``comparison_runs`` as training seed ``seed`` trains it."""
    return subset["seeds"][str(seed)] if "seeds" in subset else subset


def comparisons_of(B: dict, schedule: str) -> list[str]:
    """The comparison variants ``schedule`` trains (``basis.comparisons``)."""
    return list((B.get("comparisons") or {}).get(schedule) or [])


def trained_schedules(B: dict) -> list[str]:
    """Every schedule some run of the basis section trains with, in registry order."""
    used = set(B["schedules"]) | {s for s, cs in (B.get("comparisons") or {}).items() if cs}
    return [s for s in SCHEDULES if s in used]


def snapshot_epochs(B: dict) -> tuple[int, ...]:
    """The epochs a baseline keeps a checkpoint of: every trained schedule's switch epoch (``start_epoch``), from
    which its seed's switch and late runs continue, and the switch epoch the training schedules search at."""
    return tuple(sorted({int(B["switch_epoch"]), *(start_epoch(B, s) for s in trained_schedules(B))} - {0}))


def runs_per_seed(B: dict) -> dict[str, int]:
    """``{schedule: runs}`` one seed of the basis stage trains per schedule, ``"-"`` for the references (the
    estimate's count, an upper bound: a selection that is empty, or a subset that is another run's model, trains
    less; ``baseline_fp32`` is costed by the estimate, which knows the precision)."""
    out = {"-": int("baseline" in B["variants"])}
    basis = [v for v in ("all_layers", "selected") if v in B["variants"]]
    for s in trained_schedules(B):
        comps = comparisons_of(B, s)
        n = len(basis) * (s in B["schedules"]) + sum(len(VARIANTS[c].run_names(B)) for c in comps)
        if s == B.get("front_schedule"):
            n += front_runs_per_seed(B)
        out[s] = n
    return out


def trainings_per_seed(B: dict) -> int:
    """Runs one seed of the basis stage trains, every schedule's and the baseline (``runs_per_seed`` summed)."""
    return sum(runs_per_seed(B).values())


def front_runs_per_seed(B: dict) -> int:
    """The fronts' extra runs of one seed, trained with ``basis.front_schedule``: all layers at each of
    ``basis.front_ratios``, and at each of ``basis.front_budgets`` the selection and every comparison that schedule
    trains, ``random`` with its first draw only (a front point draws a figure, not a verdict)."""
    s = B.get("front_schedule")
    if not s:
        return 0
    comps = comparisons_of(B, s)
    at_budget = ("selected" in B["variants"]) + sum(1 if VARIANTS[c].per_seed else len(VARIANTS[c].run_names(B))
                                                    for c in comps)
    return len(B["front_ratios"]) * ("all_layers" in B["variants"]) + len(B["front_budgets"]) * at_budget
