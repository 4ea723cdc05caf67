"""Resume logs of the pipeline's measurements (arXiv 2408.06024 replication): rows appended as they are measured.

A measurement of configuration ``key`` (a content-addressed key, ``basisconv.pipeline.keys``) appends one JSON line per
finished job to ``partial-<key>.jsonl``, or ``partial-<key>.<k>of<n>.jsonl`` for worker k of n, so workers never
write the same file. A re-run reads the rows of every worker of the *same key* as done; files of other keys are
never read, so changed params, inputs or code always measure afresh.
"""
from __future__ import annotations

from pathlib import Path

from basisconv.experiment.io import append_jsonl, read_jsonl


def resume_log(run_dir, key: str, shard, row_key) -> tuple[list[dict], callable]:
    """``(rows so far of every worker of key, append)``; ``append(row)`` writes to this worker's file and ``rows``."""
    k, n = shard
    run_dir = Path(run_dir)
    path = run_dir / (f"partial-{key}.jsonl" if n == 1 else f"partial-{key}.{k}of{n}.jsonl")
    rows = read_jsonl(run_dir.glob(f"partial-{key}.*jsonl"), row_key)

    def append(row):
        rows.append(row)
        append_jsonl(path, row)
    return rows, append
