"""What the oneDNN #6035 guard costs where it applies (basisconv.core.conv_guard), measured with bench.time_call.

The affected conv cannot be timed unguarded in channels_last on an affected machine (it hangs or is wrong), so the
guard's own cost is read in contiguous (NCHW) format, where both forms are correct, next to the guarded
channels_last time that training runs; where the reproduction (tests/onednn_6035_repro.py raw, in a subprocess with
a timeout) finds the unguarded kernel correct on this machine, the unguarded channels_last time is added. Writes guard_cost.md beside this file (guard_cost_<isa>.md under ONEDNN_MAX_CPU_ISA=<isa>). Run: ``python docs/results/onednn-guard/measure.py``.
"""
import copy
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn as nn

from basisconv.experiment.models import build_model
from basisconv.perf.bench import _pass_fn, time_call
from basisconv.core.conv_guard import GuardedConv2d, guard_convs
from basisconv.experiment.provenance import hardware_info

REPRO = Path(__file__).resolve().parents[3] / "tests" / "onednn_6035_repro.py"


def unguarded(m: nn.Module) -> nn.Module:
    """The same module with every GuardedConv2d turned back into a plain nn.Conv2d (only safe in NCHW)."""
    m = copy.deepcopy(m)
    for mod in m.modules():
        if type(mod) is GuardedConv2d:
            mod.__class__ = nn.Conv2d
    return m


def raw_kernel_correct() -> bool:
    """Whether the unguarded channels_last kernel gives the float64 weight gradient here (a hang counts as no)."""
    try:
        return subprocess.run([sys.executable, str(REPRO), "raw"], capture_output=True, timeout=60).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def timings(module: nn.Module, x: torch.Tensor, min_run_time: float, raw_cl: bool) -> list:
    """fwd+bwd (median ms, IQR ms): guarded and unguarded in NCHW, guarded and (if raw_cl) unguarded in
    channels_last; None where the unguarded channels_last kernel is not safe to run."""
    cl = torch.channels_last
    t = lambda m, fmt: time_call(_pass_fn(m.to(memory_format=fmt), x.contiguous(memory_format=fmt), "fwd+bwd"),
                                 min_run_time=min_run_time)
    return [t(copy.deepcopy(module), torch.contiguous_format), t(unguarded(module), torch.contiguous_format),
            t(copy.deepcopy(module), cl), t(unguarded(module), cl) if raw_cl else None]


def main():
    torch.manual_seed(0)
    raw_cl = raw_kernel_correct()
    rows = ["| case (fwd+bwd, batch 100) | guarded, NCHW | unguarded, NCHW | guarded / unguarded, NCHW | "
            "guarded, channels_last | unguarded, channels_last | guarded / unguarded, channels_last |",
            "|:--|--:|--:|--:|--:|--:|--:|"]
    cases = {f"1x1 stride-2 conv {c_in}->{c_out} at {hw}x{hw}": (nn.Conv2d(c_in, c_out, 1, stride=2, bias=False),
                                                                 torch.randn(100, c_in, hw, hw))
             for c_in, c_out, hw in ((4, 8, 32), (8, 16, 16))}
    cases["ResNet18 width 4 (the smoke model: 2 guarded shortcuts of 20 convs)"] = (
        build_model("resnet18", width=4), torch.randn(100, 3, 32, 32))
    for name, (module, x) in cases.items():
        guard_convs(module)
        t = timings(module, x, 2.0, raw_cl)
        cell = lambda v: "not run (wrong or hangs here)" if v is None else f"{v[0]:.3f} ms ({v[1]:.3f})"
        ratio_cl = "-" if t[3] is None else f"{t[2][0] / t[3][0]:.2f}"
        rows.append(f"| {name} | {cell(t[0])} | {cell(t[1])} | {t[0][0] / t[1][0]:.2f} | {cell(t[2])} | "
                    f"{cell(t[3])} | {ratio_cl} |")
    hw, isa = hardware_info(), os.environ.get("ONEDNN_MAX_CPU_ISA", "")
    avx512 = " avx512f" in open("/proc/cpuinfo").read()
    hw_line = (f"{hw['device_name']} (AVX-512: {'yes' if avx512 else 'no'}; oneDNN ISA limit: {isa or 'none'}; "
               f"{torch.get_num_threads()} threads); torch {torch.__version__}; fp32; "
               f"unguarded kernel correct here in channels_last: {'yes' if raw_cl else 'no'}; medians of torch.utils.benchmark over at least 2 s (warm-up "
               "excluded), IQR in brackets. On an affected machine the unguarded conv cannot be timed in "
               "channels_last (it hangs or is wrong), so the guard's cost is also read in NCHW, where both forms are "
               "correct.")
    text = "# Cost of the oneDNN #6035 guard\n\n" + hw_line + "\n\n" + "\n".join(rows) + "\n"
    out = Path(__file__).parent / (f"guard_cost_{isa.lower()}.md" if isa else "guard_cost.md")
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
