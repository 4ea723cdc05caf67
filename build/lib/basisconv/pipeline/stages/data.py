"""Stage ``data``: CIFAR-10 as the paper uses it (arXiv 2408.06024, Experiments), as uint8 tensor splits.

The archive named by ``data.source`` (an entry of ``data/sources.yaml``: official URL, a local mirror, or
``synthetic``) is fetched, md5-checked and split into train / stratified val / test under ``data/prepared``;
``results/data`` gets the per-class split table. Every later stage keys its results by the *content* of
``data/prepared``, so a changed split (``data.val_size``, ``data.train_subset``, another source) reaches them all.
"""
from __future__ import annotations

import pandas as pd

from basisconv.experiment.data import load_prepared, load_sources, prepare
from basisconv.experiment.io import atomic_write_text, write_frame
from basisconv.pipeline.layout import STAGES
from basisconv.pipeline.stages import common

L = STAGES["data"]
RAW = L["raw"]


def run(P: dict, progress=True) -> dict:
    """Prepare the splits; returns ``{"meta", "table" (per-class counts), "train" (uint8 images, labels)}``."""
    D = P["data"]
    meta = prepare(D["source"], L["prepared"], root=RAW, sources=load_sources(L["sources"]),
                   val_size=D["val_size"], split_seed=D["split_seed"], train_subset=D["train_subset"],
                   synthetic_per_class=D["synthetic_per_class"])
    table = pd.DataFrame(meta["per_class"], index=meta["classes"]).astype(int)
    table.loc["total"] = table.sum()
    table.index.name = "class"
    write_frame(f"{L['summary']}/splits.csv", table.reset_index())
    atomic_write_text(f"{L['summary']}/splits.md", f"Data: {meta['label']} (source `{meta['source']}`, md5 "
                      f"`{meta['md5']}`)\n\n" + table.to_markdown() + "\n")
    common.write_provenance("data", {"inputs": common.inputs("data", P),
                                     "outputs": {"prepared": common.data_digest()}})
    return {"meta": meta, "table": table, "train": load_prepared(L["prepared"], "train")}
