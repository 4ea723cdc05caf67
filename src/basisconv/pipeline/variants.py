"""The basis stage's variants and schedules by name (arXiv 2408.06024's comparison): what ``basis.variants`` and
``basis.schedules`` may hold. Its own module, so that ``validate`` reads them without importing a stage.

``random<k>`` rows come from the variant ``random`` (``basis.random_subsets`` seeds of it).
"""
from __future__ import annotations

VARIANTS = ("baseline", "baseline_fp32", "all_layers", "selected", "random", "largest", "spectral")
SCHEDULES = ("scratch", "switch")  # basis layers from step 0, or the paper's switch after basis.switch_epoch epochs
