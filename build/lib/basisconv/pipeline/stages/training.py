"""The training stages' ``TrainConfig`` from params (baseline and basis stages of the arXiv 2408.06024 pipeline).

Kept apart from ``stages.common`` so that a stage that trains nothing (data, report) does not have the trainer, and
with it the basis layer, in its code closure: editing ``BasisConv2d`` does not re-run data preparation.
"""
from __future__ import annotations

from basisconv.experiment.train import TrainConfig
from basisconv.pipeline.stages.common import resolved_train


def train_config(train: dict, *, seed: int, **basis) -> TrainConfig:
    """A ``TrainConfig`` from the ``train`` section (pipeline-only keys dropped, ``amp`` resolved for the device)
    plus basis options."""
    keys = set(TrainConfig.__dataclass_fields__)
    return TrainConfig(**{k: v for k, v in resolved_train(train).items() if k in keys}, seed=seed, **basis)
