"""Atomic result writing for the pipeline of the arXiv 2408.06024 replication.

Every result file (text, JSON, CSV, tensors, figures) is written to a temporary name in the same folder and renamed
into place, so a killed stage never leaves a file that looks finished (a rename within one filesystem is atomic).
This is the only place that writes result files; everything else calls these helpers.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def _atomic(path, write) -> Path:
    """Call ``write(tmp_path)`` for a temporary file beside ``path``, then rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    return _atomic(path, lambda tmp: Path(tmp).write_text(text))


def write_json(path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_metrics(path, metrics: dict, digits: int = 4) -> Path:
    """A DVC metrics file: flat ``{name: number}`` only (what `dvc metrics show/diff` and `dvc exp show` compare),
    rounded to ``digits`` decimals; NaN/inf become null. Full records go to non-metric summary files."""
    import math
    out = {}
    for k, v in metrics.items():
        if isinstance(v, bool) or not isinstance(v, (int, float, type(None))):
            raise TypeError(f"metric {k!r} must be a number, got {type(v).__name__}")
        out[k] = None if v is None or not math.isfinite(v) else (round(v, digits) if isinstance(v, float) else v)
    return write_json(path, out)


def read_json(path):
    return json.loads(Path(path).read_text())


def write_frame(path, df, **kwargs) -> Path:
    """A pandas DataFrame to CSV atomically."""
    return atomic_write_text(path, df.to_csv(index=False, **kwargs))


def save_torch(obj, path) -> Path:
    """``torch.save`` atomically (checkpoints, model weights, prepared splits), with reproducible bytes.

    Saved through a file object: given a path, torch names the archive's records after the file (here a random
    temporary name), so equal tensors would give different bytes and a different content digest downstream.
    """
    import torch

    def write(tmp):
        with open(tmp, "wb") as f:
            torch.save(obj, f)
    return _atomic(path, write)


VECTOR_SUFFIX = ".svg"


def save_figure(fig, path, dpi: int = 150, vector: bool = True) -> Path:
    """The figure as PNG at ``path`` and, with ``vector``, as SVG beside it (for papers). Reproducible bytes: no
    creation date in either file and a fixed salt for the SVG's element ids (matplotlib draws random ones), so a
    page rendered again from the same results leaves its figures unchanged."""
    import matplotlib as mpl
    with mpl.rc_context({"svg.hashsalt": "basisconv"}):
        _atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png",
                                              metadata={"Software": None}))
        if vector:
            _atomic(Path(path).with_suffix(VECTOR_SUFFIX),
                    lambda tmp: fig.savefig(tmp, bbox_inches="tight", format="svg", metadata={"Date": None}))
    return Path(path)


def append_jsonl(path, row: dict) -> None:
    """Append one JSON line (a resume log): a killed writer leaves at most one cut line, which readers skip."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def read_jsonl(files, row_key) -> list[dict]:
    """Rows of JSON-lines files, one per ``row_key(row)``; the first file in name order wins."""
    seen, rows = set(), []
    for f in sorted(files):
        for line in Path(f).read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue  # blank, or the last line of a killed worker cut short: that job is measured again
            if row_key(r) not in seen:
                seen.add(row_key(r))
                rows.append(r)
    return rows
