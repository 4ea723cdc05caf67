"""The edge between ``params.yaml`` and the library, used by the pipeline notebooks (arXiv 2408.06024 replication).

Each notebook's parameters cell receives ``params.yaml`` from papermill; ``stage.params`` checks every section it
reads against ``profiles/paper.yaml`` (unknown keys are refused, missing ones take the paper's value) before any
compute. Everything else here is setup shared by all stages: threads, device, tqdm inside papermill.
"""
from __future__ import annotations

from pathlib import Path

import torch
import yaml

from .data import load_prepared
from .io import read_json
from .params import check_section
from .train import TrainConfig, resolve_device

SCHEMA = Path("profiles") / "paper.yaml"


def params(**sections) -> dict:
    """``{name: checked section}`` for each ``name=given_dict`` (papermill-injected); refuses unknown keys."""
    schema = yaml.safe_load(SCHEMA.read_text())
    out = {}
    for name, given in sections.items():
        if name not in schema:
            raise ValueError(f"unknown params section {name!r}; valid sections: {', '.join(schema)}")
        out[name] = check_section(name, given or {}, schema[name]) if isinstance(schema[name], dict) else given
    return out


def setup(train_params: dict) -> torch.device:
    """Threads and device from the ``train`` section; returns the device."""
    if train_params.get("threads"):
        torch.set_num_threads(int(train_params["threads"]))
    return resolve_device(train_params.get("device", "auto"))


def progress(interval: float = 30.0) -> dict:
    """tqdm settings for notebooks: under papermill every refresh becomes a stored output, so refresh rarely."""
    return {"mininterval": interval}


def load_splits(prepared) -> tuple[dict, dict]:
    """The three prepared splits and the data metadata (whose ``label`` goes into every result)."""
    return {s: load_prepared(prepared, s) for s in ("train", "val", "test")}, read_json(Path(prepared) / "meta.json")


def train_config(train: dict, *, seed: int, **basis) -> TrainConfig:
    """A ``TrainConfig`` from the ``train`` section (pipeline-only keys dropped) plus basis options."""
    keys = set(TrainConfig.__dataclass_fields__)
    cfg = {k: v for k, v in train.items() if k in keys}
    return TrainConfig(**cfg, seed=seed, **basis)
