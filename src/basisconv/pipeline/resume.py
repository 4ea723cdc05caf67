"""Resume logs of the pipeline's measurements (arXiv 2408.06024 replication): rows appended as they are measured.

A measurement of configuration ``key`` (a content-addressed key, ``basisconv.pipeline.keys``) appends one JSON line per
finished job to ``partial-<key>.jsonl``, or ``partial-<key>.<k>of<n>.jsonl`` for worker k of n, so workers never
write the same file. A re-run reads the rows of every worker of the *same key* as done; files of other keys are
never read, so changed params, inputs or code always measure afresh.
"""
from __future__ import annotations

from pathlib import Path

from basisconv.experiment.io import append_jsonl, read_jsonl


def resume_log(run_dir, key: str, shard, row_key, kept_dir=None) -> tuple[list[dict], callable]:
    """``(rows so far of every worker of key, append)``; ``append(row)`` writes to this worker's file and ``rows``.
    ``kept_dir``: a folder of committed rows (``stages.common.kept_dir``): its rows of the key count as done, and
    every new row is appended there too."""
    k, n = shard
    run_dir = Path(run_dir)
    name = f"partial-{key}.jsonl" if n == 1 else f"partial-{key}.{k}of{n}.jsonl"
    dirs = [run_dir] + ([Path(kept_dir)] if kept_dir is not None else [])
    rows = read_jsonl([f for d in dirs for f in sorted(d.glob(f"partial-{key}.*jsonl"))], row_key)

    def append(row):
        rows.append(row)
        for d in dirs:
            append_jsonl(d / name, row)
    return rows, append
