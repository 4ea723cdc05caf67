"""Where a result was produced: device, CPU/GPU name, threads and library versions (arXiv 2408.06024 replication).

Every timing and every trained run carries this record, so a number is never separated from the hardware and
software that produced it.
"""
from __future__ import annotations

import os
import platform

import torch


def hardware_info(device="cpu") -> dict:
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as f:
                name = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
        except (OSError, StopIteration):
            pass
    import torchvision
    return {"device": device.type, "device_name": name, "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version(), "cuda": torch.version.cuda if device.type == "cuda" else None}
