"""Tables for people, data for machines: how the report shows the pipeline's tables (arXiv 2408.06024 replication).

The CSVs keep every column at full precision. What a reader sees (the report's Markdown tables, the notebooks) is
formatted by column name through one registry, ``FORMATS``: accuracies in percent and differences in points with the
same two decimals everywhere, counts with thousands separators, times and ratios with a fixed number of decimals,
and a value within floating-point noise of zero shown as 0 (``delta_vs_baseline`` of the baseline is 0, not
1.11e-14). Hash columns (run keys, digests) are dropped, and a column with one value in every row (``data``,
``device_name``, ``threads`` ...) is said once above the table instead of repeated in every row. A table longer
than ``max_rows`` is summarised by its entry in ``SUMMARIES`` (or cut) with a link to the full CSV.
"""
from __future__ import annotations

import math
import re
from typing import Callable

import pandas as pd

ZERO = 1e-9  # below this a difference is floating-point noise (a mean minus itself), shown as 0


LIST = re.compile(r"\[[-+0-9.eE, naNinfIty]*\]")  # a list column as a CSV cell holds it: "[320.228, 350.721]"


def _num(fmt: str, scale: float = 1.0, suffix: str = "") -> Callable[[object], str]:
    def f(v) -> str:
        if isinstance(v, str) and LIST.fullmatch(v.strip()):
            v = [float(x) for x in v.strip()[1:-1].split(",") if x.strip()]  # read back from a CSV (nan too)
        if isinstance(v, (list, tuple)):  # e.g. ``round_ms``, one median per timing round: each cell formatted
            return ", ".join(map(f, v))
        if hasattr(v, "item") and not isinstance(v, (list, tuple, str)):  # a numpy scalar (a constant from
            v = v.item()                                                      # ``unique``) formats as a number
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "–"
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return str(v)
        x = float(v) * scale
        return format(0.0 if abs(x) < ZERO else x, fmt) + suffix
    return f


# column-name pattern -> formatter, first match wins; the unit goes in the header (``HEADERS``), not the cells
FORMATS: list[tuple[str, Callable[[object], str]]] = [
    (r"^(test|val|train|baseline_val|control_val)_acc$", _num(".2f", 100)),  # fractions in the files: percent here
    (r"(acc_mean|acc_std|^delta\w*|(^|_)ci_(low|high)|^real_\w*|_points|interaction\w*|_drop|^sum_of_singles)$",
     _num(".2f")),  # points
    (r"^(params|macs|params_saved|macs_saved|images|n_val|rank|seeds|batch_size|epoch|in_channels|out_channels|"
     r"threads|train|val|test|layers|budget|n_\w+|\w*_bytes)$", _num(",.0f")),
    (r"(_ms$|(^|_)ms_)", _num(",.2f")),  # ``median_ms``, ``fwd+bwd_ms_cat``
    (r"^lr$", _num(".3g")),  # a one-cycle schedule ends near 0: 3e-05, not 0.0000
    (r"_loss$", _num(".3f")),
    (r"(_s|seconds|_time|_time_mean|time_s)$", _num(",.1f")),
    (r"(speedup\w*|compression|fraction|_theory|spearman\w*|rho|ratio)(_low|_high)?$", _num(".2f")),
    (r"", _num(".4g")),  # anything else numeric
]
HEADERS = {"test_acc": "test acc (%)", "val_acc": "val acc (%)", "train_acc": "train acc (%)",
           "test_acc_mean": "test acc (%)", "test_acc_std": "± std", "delta_vs_baseline": "vs baseline (points)",
           "delta_acc": "drop (points)", "ci_low": "CI low", "ci_high": "CI high", "epoch_time_s": "epoch (s)",
           "train_time_s": "training (s)", "median_ms": "median (ms)", "iqr_ms": "IQR (ms)"}
HASH = re.compile(r"(^|_)(key|hash|md5|sha\w*|digest)$")


def formatter(column: str) -> Callable[[object], str]:
    return next(f for pat, f in FORMATS if re.search(pat, column))


def for_people(df: pd.DataFrame, whole: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """``(shown, constants)``: ``df`` without hash columns and without columns of one value (returned as
    ``constants``, name -> formatted value, when the table has more than one row), every cell formatted. ``whole``:
    the full table when ``df`` shows only its first rows: a column is constant only if it is in every row of it
    (the first 40 rows of the peers table all had 32 input channels; the table does not)."""
    df = df[[c for c in df.columns if not HASH.search(str(c))]]
    whole = df if whole is None else whole
    constants = {}
    if len(whole) > 1:
        for c in list(df.columns):
            vals = whole[c].dropna().unique()
            if len(vals) == 1 and whole[c].notna().all():
                constants[c] = formatter(str(c))(vals[0])
                df = df.drop(columns=c)
    shown = pd.DataFrame({HEADERS.get(c, c): [formatter(str(c))(v) for v in df[c]] for c in df.columns})
    return shown, constants


def summarise_benchmark_layers(df: pd.DataFrame) -> pd.DataFrame:
    """Per (precision, pass, variant, ratio): the layers timed and the median and range of their measured speedup,
    against the median theoretical one (the per-layer rows are in the CSV)."""
    sub = df[df.variant != "dense"]
    if sub.empty:
        return sub
    g = sub.groupby(["precision", "pass", "variant", "ratio"], dropna=False)
    return g.agg(n_layers=("layer", "nunique"), theoretical_speedup=("theoretical_speedup", "median"),
                 measured_speedup=("measured_speedup", "median"), min_speedup=("measured_speedup", "min"),
                 max_speedup=("measured_speedup", "max")).reset_index()


SUMMARIES: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {"benchmark_layers": summarise_benchmark_layers}


def markdown(df: pd.DataFrame, *, name: str | None = None, csv: str | None = None, max_rows: int = 40) -> str:
    """``df`` as a Markdown table for people: formatted by ``for_people``; a table longer than ``max_rows`` is
    summarised (``SUMMARIES[name]``) or cut, and ``csv`` (a link target) named for the full data."""
    note, whole = [], None
    if len(df) > max_rows:
        if name in SUMMARIES:
            n = len(df)
            df = SUMMARIES[name](df)
            note.append(f"{plural(n, 'row')} summarised in {len(df):,} groups.")
        else:
            note.append(f"The first {max_rows} of {plural(len(df), 'row')}.")
            whole, df = df, df.head(max_rows)
    shown, constants = for_people(df, whole)
    lines = []
    if constants:
        lines.append("Every row: " + "; ".join(f"{k} {v}" for k, v in constants.items()) + ".")
    if note:
        lines.append(" ".join(note) + (f" Full data: [{csv.rsplit('/', 1)[-1]}]({csv})." if csv else ""))
    body = shown.to_markdown(index=False, disable_numparse=True) if len(shown.columns) else "(no columns)"
    return "\n\n".join(lines + [body]) + "\n"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 seed``, ``3 seeds``, ``1,200 images``: a count for people (``many``: an irregular plural)."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"
