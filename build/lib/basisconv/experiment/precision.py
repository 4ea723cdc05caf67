"""Mixed precision for the experiments of arXiv 2408.06024: bf16 autocast on CUDA and on CPUs that support it.

The paper's cost analysis counts MACs; what a MAC costs depends on the dtype it runs in. bf16 autocast runs convs
and matmuls in bfloat16 (fp32 accumulation, fp32 weights and optimiser state, BatchNorm and the loss in fp32). On
a CPU with native bf16 (x86 ``avx512_bf16`` / ``amx_bf16``, or what oneDNN reports as bf16-capable) a whole
ResNet18 SGD step measured 1.8-2.4x faster than fp32 on 2 cores; on a CPU without it, autocast emulates bf16 and
is *slower* than fp32, so there ``amp`` falls back to fp32 and says so.

``effective_amp(requested, device)`` is the one place that decides: the pipeline resolves ``train.amp`` with it at
the edge, so a run's ``TrainConfig`` (and with it the run's content-addressed key) records the precision that
actually ran, not the one that was asked for.
"""
from __future__ import annotations

import contextlib
import functools
import os
import warnings

import torch


def onednn_isa_limit_without_bf16() -> str | None:
    """The value of ``ONEDNN_MAX_CPU_ISA`` (or its old name ``DNNL_MAX_CPU_ISA``) when it caps oneDNN below its
    bf16 kernels (``AVX2``, ``AVX512_CORE``, ...); ``None`` when unset or when the cap still admits them.

    The cap hides bf16 from oneDNN but not from ``/proc/cpuinfo``, so without this check an AVX2-limited run on an
    AMX machine would autocast to bf16 and run it emulated (CI runs the tests that way: ``.ci/run``).
    """
    for var in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        v = os.environ.get(var, "").strip().upper()
        if v and v not in ("ALL", "DEFAULT") and not any(t in v for t in ("BF16", "AMX", "FP16", "AVX10")):
            return v
    return None


@functools.lru_cache(maxsize=None)
def cpu_bf16_supported() -> bool:
    """Does this CPU run bf16 convs natively? Not under an ISA cap below bf16 (``onednn_isa_limit_without_bf16``);
    else oneDNN's own check, else the x86 flags in ``/proc/cpuinfo``."""
    if onednn_isa_limit_without_bf16():
        return False
    try:
        if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return True
    except (AttributeError, RuntimeError):  # an older torch without the query: read the flags below
        pass
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def bf16_supported(device) -> bool:
    """bf16 autocast pays on ``device``: CUDA with bf16 support, or a CPU with native bf16."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_bf16_supported()


def effective_amp(requested: bool, device, *, warn: bool = True) -> bool:
    """``requested`` where ``device`` supports bf16; else ``False`` (fp32), with a warning naming why."""
    if not requested:
        return False
    ok = bf16_supported(device)
    if not ok and warn:
        warnings.warn(f"amp (bf16 autocast) requested but {torch.device(device)} has no native bf16 support "
                      "(CPU without avx512_bf16/amx_bf16, or a GPU without bf16): running in fp32", stacklevel=2)
    return ok


def autocast(device, enabled: bool):
    """bf16 autocast on ``device`` when ``enabled`` (a no-op context otherwise)."""
    device = torch.device(device)
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def label(amp: bool) -> str:
    """How results name the precision they ran in."""
    return "bf16 autocast" if amp else "fp32"


# the precisions timings run in (``bench``, ``peers``): the name in result rows -> the dtype the convs compute in
PRECISIONS = {"fp32": "float32", "bf16": "bfloat16"}


def precision_name(amp: bool) -> str:
    """The ``PRECISIONS`` key of a run with bf16 autocast on (``amp``) or off."""
    return "bf16" if amp else "fp32"


def dtype_name(precision: str) -> str:
    """The dtype the convs of a ``precision`` timing compute in (bf16 autocast: bfloat16, fp32 weights)."""
    return PRECISIONS[precision]
