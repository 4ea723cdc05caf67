"""Where a result was produced: device, CPU/GPU name, threads and library versions (arXiv 2408.06024 replication).

Every timing and every trained run carries this record, so a number is never separated from the hardware and
software that produced it.
"""
from __future__ import annotations

import os
import platform
import socket

import torch


def machine_id() -> str:
    """This machine in this boot: host name and the kernel's boot id. Timings compare only between runs of one
    machine: two machines with the same CPU model can differ about 2x in speed, and a run that resumes after a session
    ends may continue on another one."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()[:8]
    except OSError:
        boot = "?"
    return f"{socket.gethostname()}/{boot}"


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
            "python": platform.python_version(), "cuda": torch.version.cuda if device.type == "cuda" else None,
            "machine": machine_id()}
