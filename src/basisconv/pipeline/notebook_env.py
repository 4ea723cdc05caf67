"""The one setup of every stage notebook of the arXiv 2408.06024 replication (instead of a copied cell in each).

A notebook's first code cell after its parameters puts the workspace's ``src`` first on ``sys.path`` (the package of
this checkout, also inside ``dvc exp run --queue``) and calls ``setup()``::

    import sys
    from pathlib import Path
    sys.path.insert(0, str(next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "dvc.yaml").is_file()) / "src"))
    from basisconv.pipeline.notebook_env import setup
    ROOT = setup()

``setup`` makes every path relative to the repository root (JupyterLab starts kernels in ``notebooks/``), draws with
the Agg backend (figures are saved, then shown from their PNG), sets the one figure style and silences, at its
source, the one library start-up warning that says nothing about the stage (``quiet_startup``). Progress bars need
nothing here: ``basisconv.core.progress`` keeps them out of the notebook's outputs.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path


def repo_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` (default: the working directory) holding ``dvc.yaml``."""
    start = Path.cwd() if start is None else Path(start)
    for p in (start, *start.parents):
        if (p / "dvc.yaml").is_file():
            return p
    raise FileNotFoundError(f"no dvc.yaml at or above {start}: run the notebook inside a basisconv checkout")


# (logger, start of the message) of start-up log records that say nothing about a stage. torch.utils.cpp_extension
# (imported by torch.utils.benchmark, so by basisconv.perf.bench) warns "No CUDA runtime is found, using
# CUDA_HOME='/usr/local'" on import wherever nvcc is on PATH but no GPU is visible: it is where C++ extensions would
# be compiled, and no stage compiles any.
STARTUP_NOISE = (("torch.utils.cpp_extension", "No CUDA runtime is found"),)


class _DropStartupNoise(logging.Filter):
    """Drops the records of one logger whose message starts with ``prefix``; every other record passes."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


def quiet_startup() -> None:
    """Silence ``STARTUP_NOISE`` at its source (a filter on each logger; idempotent). Before torch.utils.benchmark
    is first imported, else the warning is already out."""
    for name, prefix in STARTUP_NOISE:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropStartupNoise) and f.prefix == prefix for f in logger.filters):
            logger.addFilter(_DropStartupNoise(prefix))


def setup() -> Path:
    """chdir to the repository root, Agg backend, the package's figure style, quiet start-up. Returns the root."""
    quiet_startup()  # first: the imports below may load torch.utils.benchmark
    root = repo_root()
    os.chdir(root)
    import matplotlib
    matplotlib.use("Agg")
    from basisconv.pipeline.figures import style
    style()  # one style for every figure (constrained layout: no label runs into another)
    return root
