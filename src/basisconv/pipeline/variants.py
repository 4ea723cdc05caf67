"""The basis stage's variants and schedules by name (arXiv 2408.06024's comparison): what ``basis.variants`` and
``basis.schedules`` may hold, how each variant looks in figures, which runs it trains and, for the comparison
subsets, how its subset is built. Its own module, so that ``validate``, the estimate, the report and the figures
read one registry without importing a stage.

Variants are of three kinds:

- ``reference``: the baseline (and ``baseline_fp32``, the baseline in fp32 when the others train under bf16);
- ``basis``: basis layers on all candidate layers (the naive use) or on the selected layers, trained with every
  schedule of ``basis.schedules``;
- ``comparison``: a subset matched to the selection's parameter saving (``basisconv.core.selection.matched_subset``,
  ``basisconv.core.spectral``), trained with ``basis.comparison_schedule``. A comparison may train several runs
  (``random`` trains ``random0`` ... ``random<k-1>``, one per ``basis.random_subsets`` seed); a run's name maps back
  to its variant with ``variant_of``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

SCHEDULES = ("scratch", "switch")  # basis layers from step 0, or the paper's switch after basis.switch_epoch epochs


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


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str  # "reference", "basis" or "comparison"
    runs: Callable[[dict], list[str]] | None = None  # comparison: the run names it trains, from the basis section
    build: Callable[[Match, str], dict] | None = None  # comparison: the subset of one run name

    def run_names(self, B: dict) -> list[str]:
        return self.runs(B) if self.runs is not None else [self.name]


def _random_subset(m: Match, run: str) -> dict:
    from basisconv.core.selection import matched_subset
    return matched_subset(m.records, m.layers, m.target_params, m.ratios, order="random",
                          seed=int(run[len("random"):]), coeff=m.coeff)


def _largest_subset(m: Match, run: str) -> dict:
    from basisconv.core.selection import matched_subset
    return matched_subset(m.records, m.layers, m.target_params, m.ratios, order="largest", coeff=m.coeff)


def _spectral_subset(m: Match, run: str) -> dict:
    from basisconv.core.spectral import spectral_subset
    return spectral_subset(m.net, m.layers, m.target_params, m.ratios, coeff=m.coeff)


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("baseline", "reference"),
    Variant("baseline_fp32", "reference"),
    Variant("all_layers", "basis"),
    Variant("selected", "basis"),
    Variant("random", "comparison", runs=lambda B: [f"random{k}" for k in range(B["random_subsets"])],
            build=_random_subset),
    Variant("largest", "comparison", build=_largest_subset),
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

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; valid variants: {', '.join(VARIANTS)}")

    @property
    def base(self) -> str:
        """The name without point and schedule (``random2``): a comparison run of ``comparison_runs``."""
        return self.variant + ("" if self.draw is None else str(self.draw))

    @property
    def kind(self) -> str:
        return VARIANTS[self.variant].kind

    def __str__(self) -> str:
        return self.base + (f"{POINT}{self.point}" if self.point else "") + (f"@{self.schedule}" if self.schedule
                                                                            else "")

    def at(self, schedule: str | None = None, point: str | None = None) -> "RunName":
        """The same run at another schedule or point."""
        return RunName(self.variant, self.schedule if schedule is None else schedule,
                       self.point if point is None else point, self.draw)

    @classmethod
    def parse(cls, run: str) -> "RunName":
        name, _, schedule = str(run).partition("@")
        base, _, point = name.partition(POINT)
        for v in VARIANTS.values():
            if base == v.name:
                return cls(v.name, schedule, point)
            if v.runs is not None and base.startswith(v.name) and base[len(v.name):].isdigit():
                return cls(v.name, schedule, point, int(base[len(v.name):]))
        raise ValueError(f"unknown variant in run name {run!r}; valid variants: {', '.join(VARIANTS)}")


def run_name(base: str, schedule: str = "", point: str = "") -> str:
    """The run name of the comparison or variant ``base`` (``random2``, ``selected``) at ``schedule`` and ``point``."""
    return str(RunName.parse(base).at(schedule, point))


def point_of(run: str) -> str:
    """The front point of a run name (``ml2`` of ``selected~ml2@switch``), ``""`` for the main point."""
    return RunName.parse(run).point


def variant_of(run: str) -> Variant:
    """The variant of a run name such as ``selected@switch``, ``random2@switch``, ``largest~ml2@switch`` or
    ``baseline``."""
    return VARIANTS[RunName.parse(run).variant]


def comparison_runs(B: dict, match: Match) -> dict[str, dict]:
    """Every comparison run of the basis section ``B`` with its subset, ``{run name: subset}``, in registry order
    (all comparisons are built, cheap as they are, whether or not ``basis.variants`` trains them)."""
    return {run: VARIANTS[c].build(match, run) for c in COMPARISONS for run in VARIANTS[c].run_names(B)}


def trainings_per_seed(B: dict) -> int:
    """Runs one seed of the basis stage trains (the estimate's count; ``baseline_fp32`` is costed by the estimate,
    which knows the precision)."""
    n = 0
    for name in B["variants"]:
        v = VARIANTS[name]
        if v.kind == "basis":
            n += len(B["schedules"])
        elif v.kind == "comparison":
            n += len(v.run_names(B))
        elif name == "baseline":
            n += 1
    return n + front_runs_per_seed(B)


def front_runs_per_seed(B: dict) -> int:
    """The fronts' extra runs of one seed: all layers at each of ``basis.front_ratios``, and at each of
    ``basis.front_budgets`` the selection and every comparison run in ``basis.variants`` (an upper bound: a budget
    that selects nothing trains nothing)."""
    at_budget = ("selected" in B["variants"]) + sum(len(VARIANTS[c].run_names(B)) for c in COMPARISONS
                                                    if c in B["variants"])
    return (len(B["front_ratios"]) * ("all_layers" in B["variants"])
            + len(B["front_budgets"]) * at_budget)


def switch_runs_per_seed(B: dict) -> int:
    """Of ``trainings_per_seed``, the runs that switch after ``basis.switch_epoch`` epochs and so start from their
    seed's baseline snapshot (training only the epochs after it): none without a switch epoch or a baseline."""
    if B["switch_epoch"] <= 0 or "baseline" not in B["variants"]:
        return 0
    n = 0
    for name in B["variants"]:
        v = VARIANTS[name]
        if v.kind == "basis":
            n += "switch" in B["schedules"]
        elif v.kind == "comparison" and B["comparison_schedule"] == "switch":
            n += len(v.run_names(B))
    return n + (front_runs_per_seed(B) if B["comparison_schedule"] == "switch" else 0)
