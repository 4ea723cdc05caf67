"""Progress bars of the package's long loops (training epochs, the sensitivity sweep of arXiv 2408.06024 Sec. 3,
faithfulness retrainings, layer benchmarks), routed to the console and never into a notebook's stored outputs.

Every bar is tqdm's text bar (``tqdm.std``), never ``tqdm.auto``: inside a Jupyter kernel ``tqdm.auto`` wants
ipywidgets (a widget that a papermill run can neither stream nor store as text) and, without them, warns
``TqdmWarning: IProgress not found`` in every notebook.

A bar writes to the process's real stderr, ``sys.__stderr__``, not to ``sys.stderr``. In a plain process (a test,
``torchrun``) the two are the same stream. In a Jupyter kernel ``sys.stderr`` is the cell's captured output, which the
notebook stores: every ``\\r`` update of a bar became one more line of the executed notebook. The pipeline's runner
(``basisconv.pipeline.notebook``) starts its kernels with ipykernel's fd capture off, so there ``sys.__stderr__`` is
the console of ``dvc repro`` that the kernel inherited: the bar (with its ETA) streams there as the stage runs and the
stored notebook holds none of it. In JupyterLab (fd capture on, ipykernel's default) the kernel forwards what is
written to fd 2 into the cell, so an interactive user still sees the bar.

tqdm is optional for the core (it needs torch and numpy only): without it, or with ``progress=False``, ``bar`` returns a
stand-in that only iterates (``update``, ``close`` and ``with`` do nothing).
"""
from __future__ import annotations

import sys


def _options(progress) -> dict | None:
    """``progress`` as tqdm options (None: no bar). True: defaults; a dict: tqdm's keyword arguments."""
    if progress is False or progress is None:
        return None
    if progress is True:
        return {}
    if isinstance(progress, dict):
        return dict(progress)
    raise TypeError(f"progress must be True, False or a dict of tqdm options (e.g. {{'mininterval': 30.0}}), "
                    f"got {type(progress).__name__}: {progress!r}")


def console():
    """The stream a bar writes to: the process's real stderr (see the module docstring), else ``sys.stderr``."""
    return sys.__stderr__ if sys.__stderr__ is not None else sys.stderr


class _Silent:
    """What ``bar`` returns without tqdm: iterates ``iterable``; ``update``/``close`` and ``with`` do nothing."""

    def __init__(self, iterable=None):
        self.iterable = iterable

    def __iter__(self):
        return iter(() if self.iterable is None else self.iterable)

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def bar(iterable=None, *, progress=True, **kwargs):
    """A text progress bar over ``iterable`` (or a manual one: ``total=...`` and ``.update(n)``) on ``console()``.

    ``progress``: True (a bar with tqdm's defaults), False (no output: a stand-in that only iterates), or a dict
    of tqdm options that override ``kwargs`` (e.g. ``{"mininterval": 30.0}`` for long runs).
    ``kwargs``: the caller's tqdm options (``desc``, ``total``, ``leave``, ``unit``, ``disable``, ...).
    """
    opts = _options(progress)
    kw = {**kwargs, **(opts or {})}
    if opts is None or kw.pop("disable", False):
        return _Silent(iterable)  # no bar asked for: tqdm is not even imported
    try:
        from tqdm.std import tqdm
    except ImportError:  # optional: the core needs torch and numpy only, and a bar is a nicety
        return _Silent(iterable)
    kw.setdefault("file", console())
    return tqdm(iterable, **kw)
