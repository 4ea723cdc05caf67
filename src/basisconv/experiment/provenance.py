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


def numerics(device="cpu") -> dict:
    """What decides a training's floating-point results besides its inputs and code: the torch version and, on a
    CPU, the vendor, the kernels' instruction set (oneDNN's, which ``ONEDNN_MAX_CPU_ISA`` can lower) and the native
    bf16 instructions (AMX or AVX-512 bf16: their bf16 rounding differs); on a GPU its name and CUDA version. Two
    machines that agree here give bit-identical trainings; a run on another kind of CPU is another run (its key
    holds this), so a baseline retrained there is never paired with runs that started from the old one."""
    device = torch.device(device)
    out = {"torch": torch.__version__, "device": device.type}
    if device.type == "cuda":
        return {**out, "name": torch.cuda.get_device_name(device), "cuda": torch.version.cuda}
    flags, vendor = set(), "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("vendor_id") and vendor == "?":
                    vendor = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return {**out, "vendor": vendor, "capability": torch.backends.cpu.get_cpu_capability(),
            "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""),
            "bf16": sorted(flags & {"amx_bf16", "avx512_bf16"})}


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
