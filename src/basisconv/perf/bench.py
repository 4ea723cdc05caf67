"""Timing of basis layers and models: the forward/backward cost claims of arXiv 2408.06024.

Theory (per output pixel): dense ``C_out C_in k^2`` MACs vs basis ``r C_in k^2 + (C_out - r) r`` (reduced), so the
theoretical speedup of a layer is the MAC ratio (from ``count_macs``). Measured times use
``torch.utils.benchmark.Timer.blocked_autorange`` (it synchronises CUDA), after warm-up calls that are not timed;
every row carries the device, thread count, torch version, precision, batch size and memory format it was taken
with. Whole models are timed in interleaved rounds (every model once per round), so a model's speedup
comes with a paired interval over the rounds (``speedup_interval``); verdicts are drawn from the kept rounds where a claim is
decided (``basisconv.pipeline.claims``), not here. Every timing runs in fp32 or in bf16 autocast (``precision``), so the claim can be checked in the dtype a run
actually trains in: under bf16 the convs get much cheaper per MAC while the memory-bound work does not.

Why a layer falls short of its MAC ratio: every execution form of a reduced layer runs the same two kernels, the
rank-``r`` ``k x k`` conv on ``X`` and the ``1 x 1`` mix of the ``C_out - r`` combined channels on ``Y'``. Timing
them alone (``basis_kxk``, ``basis_mix`` rows) gives the layer's *kernel floor* ``t_dense / (t_kxk + t_mix)``: no
form that composes these kernels can beat it, so a miss whose floor is below the target is a kernel limit (named by
the kernel whose time exceeds its MAC share the most), and a miss above it is form overhead (``targets``).
"""
from __future__ import annotations

import copy
import math
import numbers
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.benchmark as tbench

from basisconv.core.basis import BasisConv2d
from basisconv.core.checks import check_choice
from basisconv.core.progress import bar as progress_bar
from basisconv.core.conv_guard import guard_convs
from basisconv.core.counting import count_macs
from basisconv.core.evidence import t_interval
from basisconv.experiment.precision import PRECISIONS, autocast, dtype_name
from basisconv.experiment.provenance import hardware_info
from basisconv.core.surgery import conv_layers

PASSES = ("fwd", "fwd+bwd")
MEMORY_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def check_memory_format(name: str):
    return MEMORY_FORMATS[check_choice(name, MEMORY_FORMATS, "memory_format")]


def time_call(fn, *, min_run_time: float = 1.0, warmup: int = 3) -> tuple[float, float]:
    """(median ms, IQR ms) of ``fn()``; ``warmup`` calls first (allocations, kernel selection) are not timed."""
    for _ in range(warmup):
        fn()
    # torch.utils.benchmark times on ONE thread unless told otherwise; time with the threads training uses
    m = tbench.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads()).blocked_autorange(
        min_run_time=min_run_time)
    return m.median * 1e3, m.iqr * 1e3


def pass_fn(module: nn.Module, x: torch.Tensor, pass_: str, precision: str = "fp32"):
    """``fn()`` running one ``pass_`` of ``module`` on ``x`` in ``precision`` (bf16: autocast, as training runs)."""
    amp = check_choice(precision, PRECISIONS, "precision") == "bf16"
    guard_convs(module)  # oneDNN #6035: never time (or run) the broken 1x1 stride-2 kernel
    if pass_ == "fwd":
        def fwd():
            with torch.no_grad(), autocast(x.device, amp):
                module(x)
        return fwd
    xg = x.detach().clone().requires_grad_(True)  # gradients w.r.t. input and weights, as in training
    params = list(module.parameters())

    def fwd_bwd():
        for p in params:
            p.grad = None
        xg.grad = None
        with autocast(x.device, amp):
            out = module(xg)
        out.float().sum().backward()
    return fwd_bwd


def synthetic_batch(batch_size: int, input_shape, num_classes: int, *, device="cpu",
                    memory_format=torch.channels_last, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images ``(batch_size, *input_shape)`` in ``memory_format`` and labels in ``[0, num_classes)``: what
    a timing feeds a model (the values do not change a conv's time)."""
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    x = torch.randn(batch_size, *input_shape, generator=g).to(device).contiguous(memory_format=memory_format)
    y = torch.randint(0, num_classes, (batch_size,), generator=g).to(device)
    return x, y


def sgd_step_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, amp: bool = False, optimizer=None):
    """``step()``: forward and cross-entropy under bf16 autocast when ``amp`` (as ``train.train`` runs them), then
    backward and one optimiser step; ``optimizer`` defaults to SGD (lr 1e-3, momentum 0.9) over ``model``'s
    parameters (pass one to step a compiled or wrapped runner whose parameters live elsewhere). The one training
    step that every timing of whole models uses (``bench_models``, ``bench_trainer_overhead``, the estimate,
    gpu-check)."""
    opt = optimizer if optimizer is not None else torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        with autocast(x.device, amp):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def distinct_shapes(model: nn.Module, input_shape, kernel_size: int = 3) -> list:
    """One ``conv_layers`` record per distinct (C_in, C_out, k, stride, input size) among the ``k x k`` convs
    with more than 3 input channels (the stem has too few filter dimensions for any budget to matter);
    ``input_shape``: one example's ``(C, H, W)``."""
    seen, out = set(), []
    for rec in conv_layers(model, (1, *input_shape)):
        key = (rec.in_channels, rec.out_channels, rec.kernel_size, rec.stride, rec.input_hw)
        if rec.kernel_size[0] == kernel_size and rec.in_channels > 3 and key not in seen:
            seen.add(key)
            out.append(rec)
    return out


def layer_variants(conv: nn.Conv2d, ratio: float, init: str = "qr") -> dict[str, nn.Module]:
    reduced = BasisConv2d.from_conv(conv, ratio=ratio, coeff="reduced", init=init)
    return {"basis_reduced": reduced, "basis_full": BasisConv2d.from_conv(conv, ratio=ratio, coeff="full", init=init),
            "folded": reduced.to_conv()}


def kernel_parts(layer: BasisConv2d) -> dict[str, nn.Conv2d]:
    """The two kernels every execution form of a reduced ``layer`` runs, as stand-alone convs: ``basis_kxk`` (the
    rank-r k x k conv, input X ``(N, C_in, H, W)``) and ``basis_mix`` (the 1 x 1 conv of the ``C_out - r`` combined
    channels, input Y' ``(N, r, H', W')``); empty when there is nothing to mix (``rank == C_out``)."""
    if layer.coeff != "reduced" or layer.coefficients.shape[0] == 0:
        return {}
    kxk = nn.Conv2d(layer.in_channels, layer.rank, layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                    bias=False)
    mix = nn.Conv2d(layer.rank, layer.out_channels - layer.rank, 1, bias=False)
    with torch.no_grad():
        kxk.weight.copy_(layer.weight)
        mix.weight.copy_(layer.coefficients[:, :, None, None])
    return {"basis_kxk": kxk.to(layer.weight.device), "basis_mix": mix.to(layer.weight.device)}


def bench_layers(model: nn.Module, ratios, *, input_shape, batch_sizes=(128,), memory_formats=("channels_last",),
                 device="cpu", min_run_time: float = 1.0, layers=None, passes=PASSES, precisions=("fp32",),
                 on_row=None, progress: bool | dict = True) -> list[dict]:
    """Rows for every conv (or ``layers``) x batch size x memory format x precision x pass: dense, then each
    ratio's ``basis_reduced``, ``basis_full`` and ``folded`` (the basis folded back into one dense conv), and the
    reduced layer's two kernels alone (``kernel_parts``, fwd+bwd only: the target's pass). ``input_shape``: one
    example's ``(C, H, W)``, which gives every layer its input size."""
    device = torch.device(device)
    for prec in precisions:
        check_choice(prec, PRECISIONS, "precision")
    fmts = {name: check_memory_format(name) for name in memory_formats}
    model = copy.deepcopy(model).to(device).eval()
    records = [r for r in conv_layers(model, (1, *input_shape)) if layers is None or r.name in layers]
    hw = hardware_info(device)
    jobs = [(r, bs, f) for r in records for bs in batch_sizes for f in fmts]
    rows = []
    for rec, bs, fmt_name in progress_bar(jobs, progress=progress, desc="layers"):
        fmt = fmts[fmt_name]
        conv = model.get_submodule(rec.name).to(memory_format=fmt)
        x = torch.randn(bs, rec.in_channels, *rec.input_hw, device=device).contiguous(memory_format=fmt)
        shape = (1, rec.in_channels, *rec.input_hw)
        dense_macs = count_macs(conv, shape)
        # (variant, ratio, module, its input, passes): the kernels alone only in fwd+bwd, where the target is held
        modules = [("dense", None, conv, x, passes)]
        for r in ratios:
            variants = layer_variants(conv, r)
            modules += [(v, r, m.to(memory_format=fmt), x, passes) for v, m in variants.items()]
            parts = kernel_parts(variants["basis_reduced"])
            if parts and "fwd+bwd" in passes:
                with torch.no_grad():
                    y = parts["basis_kxk"](x).contiguous(memory_format=fmt)  # Y' (N, r, H', W'): the mix's input
                modules += [("basis_kxk", r, parts["basis_kxk"].to(memory_format=fmt), x, ("fwd+bwd",)),
                            ("basis_mix", r, parts["basis_mix"].to(memory_format=fmt), y, ("fwd+bwd",))]
        for prec in precisions:
            dense_ms = {}
            for variant, ratio, mod, inp, mod_passes in modules:
                macs = count_macs(mod, (1, *inp.shape[1:]))
                for p in mod_passes:
                    med, iqr = time_call(pass_fn(mod, inp, p, prec), min_run_time=min_run_time)
                    if variant == "dense":
                        dense_ms[p] = med
                    row = {"layer": rec.name, "ratio": ratio, "variant": variant, "pass": p, "batch_size": bs,
                           "memory_format": fmt_name, "device": hw["device"], "device_name": hw["device_name"],
                           "threads": hw["threads"], "torch": hw["torch"], "precision": prec,
                           "dtype": dtype_name(prec), "in_channels": rec.in_channels,
                           "out_channels": rec.out_channels, "input_hw": "x".join(map(str, rec.input_hw)),
                           "rank": getattr(mod, "rank", None), "macs": macs,
                           "median_ms": med, "iqr_ms": iqr, "theoretical_speedup": dense_macs / macs,
                           "measured_speedup": dense_ms[p] / med}
                    rows.append(row)
                    if on_row is not None:
                        on_row(row)
    return rows


def make_layer_timer(batch_size: int, *, device="cpu", min_run_time: float = 0.2, memory_format="channels_last",
                     precision: str = "fp32"):
    """``timer(conv, basis, rec) -> ms saved`` (dense minus basis fwd+bwd, in ``precision``) for the sensitivity
    table. It times copies: ``conv`` and ``basis`` keep their memory format, gradients and class (``Module.to``
    changes a module in place, and a weight in channels_last takes another oneDNN path in every later forward)."""
    fmt = check_memory_format(memory_format)
    check_choice(precision, PRECISIONS, "precision")

    def timer(conv, basis, rec):
        x = torch.randn(batch_size, rec.in_channels, *rec.input_hw, device=device).contiguous(memory_format=fmt)
        t_dense = time_call(pass_fn(copy.deepcopy(conv).to(memory_format=fmt), x, "fwd+bwd", precision),
                            min_run_time=min_run_time)[0]
        t_basis = time_call(pass_fn(copy.deepcopy(basis).to(memory_format=fmt), x, "fwd+bwd", precision),
                            min_run_time=min_run_time)[0]
        return t_dense - t_basis
    return timer


def tune_forms(model: nn.Module, *, batch_size: int, input_shape, device="cpu", memory_format: str = "channels_last",
               min_run_time: float = 0.2, precision: str = "fp32") -> tuple[nn.Module, nn.Module, list[dict]]:
    """Pick each basis layer's execution form by measurement at its own input shape, in ``precision``.

    Training: the faster of ``impl="cat"`` and ``"dense_mix"`` (same parameters, same outputs) in fwd+bwd.
    Inference: the basis layer or its folded dense conv (``to_conv``, same outputs), whichever is faster in fwd.
    ``input_shape``: one example's ``(C, H, W)``. Returns ``(train_model, inference_model, rows)``; the input
    model is untouched. Where a basis layer is slower
    than its folded form this is how it still never costs time at inference.
    """
    device = torch.device(device)
    fmt = check_memory_format(memory_format)
    train_model = copy.deepcopy(model).to(device, memory_format=fmt)
    shapes = {r.name: r for r in conv_layers(train_model, (1, *input_shape)) if r.kind == "basis"}
    rows, fold = [], []
    for name, rec in shapes.items():
        layer = train_model.get_submodule(name)
        x = torch.randn(batch_size, rec.in_channels, *rec.input_hw, device=device).contiguous(memory_format=fmt)
        impls = ("cat", "dense_mix") if layer.coeff == "reduced" else ("cat",)
        times = {}
        for impl in impls:
            layer.impl = impl
            times[impl] = time_call(pass_fn(layer, x, "fwd+bwd", precision), min_run_time=min_run_time)[0]
        layer.impl = min(times, key=times.get)
        fwd_basis = time_call(pass_fn(layer, x, "fwd", precision), min_run_time=min_run_time)[0]
        fwd_folded = time_call(pass_fn(layer.to_conv().to(memory_format=fmt), x, "fwd", precision),
                               min_run_time=min_run_time)[0]
        if fwd_folded < fwd_basis:
            fold.append(name)
        rows.append({"layer": name, "train_impl": layer.impl, **{f"fwd+bwd_ms_{k}": v for k, v in times.items()},
                     "fwd_ms_basis": fwd_basis, "fwd_ms_folded": fwd_folded, "inference_form": (
                         "folded" if name in fold else "basis")})
    from basisconv.core.surgery import fold as fold_layers
    inference_model = fold_layers(train_model, fold) if fold else copy.deepcopy(train_model)
    return train_model, inference_model, rows


def speedup_interval(base_rounds, rounds, confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean_ratio, low, high)``: the paired speedup of a model over the baseline from interleaved timing rounds.

    Round ``r`` timed the baseline (``base_rounds[r]``, ms) and the model (``rounds[r]``) back to back, so the per-round
    ratio ``s_r = base_rounds[r] / rounds[r]`` is paired: drift of the machine between rounds cancels in it. Ratios
    are averaged on the log scale (a speedup of 2 and one of 0.5 cancel): ``mean_ratio`` is the geometric mean, and
    ``(low, high)`` is the t-interval of the mean log ratio mapped back; NaN with fewer than two rounds. The geometric
    mean need not equal the ratio of medians (``measured_speedup``), so that need not lie inside the interval.
    """
    base_rounds, rounds = list(base_rounds), list(rounds)
    if not rounds or len(base_rounds) != len(rounds):
        raise ValueError(f"need as many baseline rounds as model rounds (>= 1), got {len(base_rounds)} and "
                         f"{len(rounds)}")
    # log s_r = log(base_r / t_r); n rounds:
    #   [low, high] = exp( mean(log s) -/+ t_{(1+c)/2, n-1} * sd(log s) / sqrt(n) )      (sd with n-1)
    mean, low, high, _ = t_interval([math.log(b / t) for b, t in zip(base_rounds, rounds)], confidence)
    return math.exp(mean), math.exp(low), math.exp(high)


def _infer_fn(runner, x: torch.Tensor, device, amp: bool):
    def infer():
        with torch.no_grad(), autocast(device, amp):
            runner(x)
    return infer


def bench_models(models: dict[str, nn.Module], *, input_shape, num_classes: int, batch_size: int = 128, device="cpu",
                 memory_format: str = "channels_last", min_run_time: float = 1.0, on_row=None,
                 modes: dict[str, tuple] | None = None, precision: str = "fp32", compile: bool = False,
                 repeats: int = 3, jobs: dict | None = None) -> list[dict]:
    """Training-step (fwd+bwd+SGD step) and inference time per model in ``precision``; throughput in images/s.
    ``compile``: each model runs through ``torch.compile`` (compiled in the warm-up calls, which are not timed).

    ``input_shape``: one example's ``(C, H, W)``; labels in ``[0, num_classes)``. Speedups are against the first
    model of ``models`` (the baseline; per mode, the first model timed in it). ``modes``: ``{name: ("train_step",)}``
    to time only some modes of a model (e.g. an inference-only folded model); default both.

    Each mode is timed in ``repeats`` interleaved rounds: round ``r`` times every model in order, each for
    ``min_run_time / repeats`` seconds (warm-up calls only before the first round). Interleaving makes slow drift of
    the machine (clocks, thermals, other load) hit all models alike instead of whichever model happened to be timed
    last, and the per-round ratios against the baseline give a paired interval (``speedup_interval``). A row's
    ``median_ms`` / ``iqr_ms`` are the medians of the round medians / IQRs, ``round_ms`` the round medians;
    ``speedup_low``/``speedup_high`` the 95 % interval of the speedup (NaN with one round; the baseline's own row:
    exactly 1). ``on_row`` gets each row once every round of its mode is done; the returned rows are model-major
    (a model's train step, then its inference).

    ``jobs``: ``{name: fn}`` of longer pieces of work (seconds each, such as a sensitivity proxy job) timed once per
    training-step round, right after the round's models, with one untimed call before the first round: each gets a
    row of mode ``job`` (after the models' rows) whose ``round_ms`` pair with the training-step rounds
    (``speedup_interval``), so a job's cost against a training step is measured under the same drift.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, numbers.Integral) or repeats < 1:
        raise ValueError(f"repeats must be a positive int (timing rounds per mode), got {repeats!r}")
    repeats = int(repeats)
    device = torch.device(device)
    fmt = check_memory_format(memory_format)
    amp = check_choice(precision, PRECISIONS, "precision") == "bf16"
    hw = hardware_info(device)
    prepared, base_macs = [], None  # (name, model, macs, {mode: fn}) of every model, built once
    for name, model in models.items():
        model = copy.deepcopy(model).to(device, memory_format=fmt)
        guard_convs(model)  # oneDNN #6035
        x, y = synthetic_batch(batch_size, input_shape, num_classes, device=device, memory_format=fmt)
        runner = torch.compile(model) if compile else model  # a compiled module's parameters are the model's
        fns = {"train_step": sgd_step_fn(runner, x, y, amp=amp), "inference": _infer_fn(runner, x, device, amp)}
        macs = count_macs(model, (1, *input_shape))
        base_macs = macs if base_macs is None else base_macs  # the first model is the reference
        wanted = (modes or {}).get(name, ("train_step", "inference"))
        prepared.append((name, model, macs, {m: f for m, f in fns.items() if m in wanted}))
    out = {}  # (model index, mode) -> row
    jobs = dict(jobs or {})
    for fn in jobs.values():
        fn()  # warm-up: first-call allocations and kernel selection are not the job's cost
    job_ms = {name: [] for name in jobs}
    for mode in ("train_step", "inference"):
        timed = [i for i, (_, _, _, fns) in enumerate(prepared) if mode in fns]
        rounds = {i: [] for i in timed}  # per model: (median ms, IQR ms) of each round
        for r in range(repeats):
            for i in timed:
                _, model, _, fns = prepared[i]
                model.train(mode == "train_step")
                warm = {} if r == 0 else {"warmup": 0}  # warm-up (and compilation) once, before the first round
                rounds[i].append(time_call(fns[mode], min_run_time=min_run_time / repeats, **warm))
            if mode == "train_step":
                for name, fn in jobs.items():
                    _sync(device)
                    t0 = time.perf_counter()
                    fn()
                    _sync(device)
                    job_ms[name].append(1e3 * (time.perf_counter() - t0))
        base = timed[0] if timed else None  # the first model timed in this mode is its baseline
        for i in timed:
            name, model, macs, _ = prepared[i]
            round_ms = [m for m, _ in rounds[i]]
            med, iqr = statistics.median(round_ms), statistics.median(q for _, q in rounds[i])
            base_rounds = [m for m, _ in rounds[base]]
            geomean, low, high = speedup_interval(base_rounds, round_ms)
            row = {"model": name, "mode": mode, "batch_size": batch_size, "memory_format": memory_format,
                   "device": hw["device"], "device_name": hw["device_name"], "threads": hw["threads"],
                   "torch": hw["torch"], "precision": precision, "dtype": dtype_name(precision),
                   "compiled": compile, "params": sum(p.numel() for p in model.parameters()), "macs": macs,
                   "median_ms": med,
                   "iqr_ms": iqr, "images_per_s": batch_size / med * 1e3,
                   "theoretical_speedup": base_macs / macs, "measured_speedup": statistics.median(base_rounds) / med,
                   "repeats": repeats, "round_ms": round_ms, "speedup_geomean": geomean,
                   "speedup_low": low, "speedup_high": high}
            out[i, mode] = row
            if on_row is not None:
                on_row(row)
    rows = [out[k] for k in sorted(out, key=lambda k: (k[0], k[1] != "train_step"))]
    for name, ms in job_ms.items():
        row = {"model": name, "mode": "job", "batch_size": batch_size, "memory_format": memory_format,
               "device": hw["device"], "device_name": hw["device_name"], "threads": hw["threads"],
               "torch": hw["torch"], "precision": precision, "dtype": dtype_name(precision), "compiled": False,
               "median_ms": statistics.median(ms), "iqr_ms": float("nan"), "repeats": repeats, "round_ms": ms}
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def bench_loader(images: torch.Tensor, labels: torch.Tensor, *, batch_size: int, device="cpu",
                 channels_last: bool = True, min_run_time: float = 1.0) -> dict:
    """Time to produce one augmented, normalised training batch with ``TensorLoader`` (crop + flip + normalise)."""
    from basisconv.experiment.loader import TensorLoader
    loader = TensorLoader(images, labels, batch_size, train=True, device=device, channels_last=channels_last)
    it = {"i": iter(loader)}

    def next_batch():
        try:
            x, _ = next(it["i"])
        except StopIteration:
            loader.set_epoch(loader.epoch + 1)
            it["i"] = iter(loader)
            x, _ = next(it["i"])
        if x.device.type == "cuda":
            torch.cuda.synchronize()
    med, iqr = time_call(next_batch, min_run_time=min_run_time)
    return {"median_ms": med, "iqr_ms": iqr, "images_per_s": batch_size / med * 1e3}


def bench_trainer_overhead(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int,
                           steps: int = 20, device="cpu", channels_last: bool = True, amp: bool = False) -> dict:
    """images/s of the package's ``train`` loop vs a bare forward/backward/step loop on the same model and batch,
    both with bf16 autocast when ``amp``.

    The trainer runs ``steps`` SGD steps (an epoch); the bare step (``sgd_step_fn`` on one batch of the images'
    shape, no data work at all) is timed by ``time_call``, so the difference is everything the trainer adds: data
    loading, augmentation, schedule, metrics and NaN checks.
    """
    from basisconv.experiment.train import TrainConfig, train
    n = steps * batch_size
    data = (images[:n], labels[:n])
    cfg = TrainConfig(epochs=1, batch_size=batch_size, warmup_epochs=0, channels_last=channels_last, lr=1e-3,
                      amp=amp)
    train(copy.deepcopy(model), data, None, cfg, device=device, progress=False)  # warm-up (allocations)
    res = train(copy.deepcopy(model), data, None, cfg, device=device, progress=False)
    trainer_ips = res.history[-1]["images_per_s"]
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    device = torch.device(device)
    net = copy.deepcopy(model).to(device, memory_format=fmt).train()
    guard_convs(net)  # oneDNN #6035, as train() does
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x = torch.randn(batch_size, *images.shape[1:], device=device).contiguous(memory_format=fmt)
    y = labels[:batch_size].to(device)
    median_ms, _ = time_call(sgd_step_fn(net, x, y, amp=amp, optimizer=opt), min_run_time=1.0, warmup=3)
    bare_ips = batch_size / median_ms * 1e3
    return {"trainer_images_per_s": trainer_ips, "bare_images_per_s": bare_ips,
            "trainer_overhead": 1 - trainer_ips / bare_ips}
