"""Deployment path of a basis-converted model (arXiv 2408.06024): ONNX export, checked in onnxruntime, and timed.

A trained basis model can ship in two forms: as trained (every basis layer ``A W'`` runs as a ``k x k`` conv to
``r`` channels plus the coefficient mix, the paper's cheap form) or folded (``surgery.fold``: each basis layer
becomes one dense conv with weight ``A W'``, identical outputs, dense cost). ``export_onnx`` writes either with
``torch.onnx.export``; ``check_onnx`` runs the file in onnxruntime on the same input and returns the largest absolute
difference to PyTorch's output; ``bench_onnx`` times inference of each model in PyTorch and in onnxruntime (CPU
execution provider, the same thread count), warm-up excluded.
"""
from __future__ import annotations

import copy
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from basisconv.perf.bench import time_call
from basisconv.experiment.provenance import hardware_info


def _ort():
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError("ONNX checks need onnxruntime (and onnx, onnxscript): pip install onnxruntime onnx "
                          "onnxscript") from e
    return onnxruntime


def export_onnx(model: nn.Module, path, input_shape) -> Path:
    """``model`` (eval mode, CPU, fp32) as an ONNX file at ``path`` with a dynamic batch dimension;
    ``input_shape``: one example's ``(C, H, W)``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(model).cpu().float().eval()
    x = torch.zeros((1, *input_shape))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes are not the user's problem
        torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
    return path


def session(path, threads: int | None = None):
    ort = _ort()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def check_onnx(model: nn.Module, path, x: torch.Tensor, sess=None) -> float:
    """Largest ``|onnxruntime(x) - model(x)|`` over the logits (the export is correct when this is ~1e-5);
    ``sess``: an open ``session(path)`` to reuse."""
    with torch.no_grad():
        ref = copy.deepcopy(model).cpu().float().eval()(x.cpu()).numpy()
    out = (sess or session(path)).run(None, {"x": x.cpu().numpy()})[0]
    return float(np.abs(out - ref).max())


def bench_onnx(models: dict[str, nn.Module], out_dir, *, input_shape, batch_size: int = 64,
               min_run_time: float = 1.0) -> list[dict]:
    """Per model: export, check, and inference time in PyTorch (eager, eval, channels_last) and onnxruntime;
    ``input_shape``: one example's ``(C, H, W)``."""
    rows, hw = [], hardware_info(torch.device("cpu"))
    x = torch.randn(batch_size, *input_shape, generator=torch.Generator().manual_seed(0))
    for name, model in models.items():
        t0 = time.perf_counter()
        path = export_onnx(model, Path(out_dir) / f"{name}.onnx", input_shape)
        export_s = time.perf_counter() - t0
        sess = session(path)  # one session per model: checked, then timed
        diff = check_onnx(model, path, x, sess)
        feed = {"x": x.numpy()}
        m = copy.deepcopy(model).cpu().eval().to(memory_format=torch.channels_last)
        xc = x.contiguous(memory_format=torch.channels_last)

        def torch_infer():
            with torch.no_grad():
                m(xc)
        torch_ms = time_call(torch_infer, min_run_time=min_run_time)[0]
        ort_ms = time_call(lambda: sess.run(None, feed), min_run_time=min_run_time)[0]
        rows.append({"model": name, "batch_size": batch_size, "max_abs_diff": diff, "export_s": export_s,
                     "onnx_bytes": path.stat().st_size, "pytorch_ms": torch_ms, "onnxruntime_ms": ort_ms,
                     "ort_speedup_over_pytorch": torch_ms / ort_ms, "onnxruntime": _ort().__version__,
                     "device_name": hw["device_name"], "threads": hw["threads"], "torch": hw["torch"]})
    return rows
