"""Per-layer sensitivity analysis and layer selection (arXiv 2408.06024, the sensitivity-based basis search).

For each candidate conv and each ratio, only that layer of the trained baseline is converted to a basis layer and
the validation accuracy is measured with a cheap proxy:

- ``zero_shot``: BatchNorm statistics recalibrated on a few training batches, no gradient step;
- ``finetune``: the same, then ``finetune_steps`` SGD steps on training batches (and the statistics once more).

``PROXIES`` is the registry of proxies (name -> function adapting a converted model in place) and ``ProxyConfig``
holds their settings; a new proxy is one entry plus its test (tests/test_sensitivity.py parametrises over it).

Sensitivity (points) ``delta = 100 * (acc_control - acc_converted)``: the control is the unconverted baseline put
through the same proxy (same BN batches, same fine-tune steps), so the delta is the conversion's effect alone and not
that of recalibrating or fine-tuning. Both are scored on the same validation images, so the interval is a paired
one (normal approximation on the per-image differences of correctness, as in McNemar's test), much narrower than
an interval on either accuracy alone. Selection is a greedy knapsack: options (layer, ratio) are taken in order of
saving per point of predicted loss while the summed loss stays within ``max_loss``; each layer at most once.
Comparison subsets (random, largest-first) are matched to the selection's parameter savings.
"""
from __future__ import annotations

import copy
import fnmatch
import math
import time
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .basis import COEFF_CHOICES, INIT_CHOICES, _check_choice, check_ratio, resolve_rank
from .checks import check_choice
from .conv_guard import guard_convs
from .counting import count_macs
from .loader import TensorLoader
from .precision import autocast
from .surgery import conv_layers, convert, convertible_names
from .train import evaluate

OBJECTIVES = ("params", "macs", "time")


def _positive_int(v, name: str) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")


@dataclass(frozen=True)
class ProxyConfig:
    """The settings of a proxy measurement: how layers are converted and how the proxy adapts the model.

    ``init``/``coeff``: ``BasisConv2d.from_conv``'s; ``bn_batches``: training batches of ``batch_size`` images per
    BatchNorm recalibration; ``finetune_steps`` SGD steps at ``finetune_lr`` (``finetune`` proxy); ``seed``: the
    global torch seed before conversion and the training loader's shuffling/augmentation seed, so the converted model
    and its control see the same batches; ``amp``: BN recalibration, fine-tune steps and scoring under bf16 autocast
    (``basisconv.precision``; the caller passes the effective value, so fp32 where the device lacks bf16).
    """
    init: str = "qr"
    coeff: str = "reduced"
    bn_batches: int = 20
    batch_size: int = 256
    finetune_steps: int = 100
    finetune_lr: float = 0.01
    seed: int = 0
    amp: bool = False

    def __post_init__(self):
        _check_choice(self.init, INIT_CHOICES, "init")
        _check_choice(self.coeff, COEFF_CHOICES, "coeff")
        for name in ("bn_batches", "batch_size", "finetune_steps"):
            _positive_int(getattr(self, name), name)
        lr = self.finetune_lr
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf:
            raise ValueError(f"finetune_lr must be a finite number > 0, got {lr!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")
        if not isinstance(self.amp, bool):
            raise ValueError(f"amp must be true or false, got {self.amp!r}")


def candidate_layers(model: nn.Module, include=("*",), exclude=(), kernel_sizes=(3,)) -> list[str]:
    """Convertible convs whose name matches an ``include`` pattern and no ``exclude`` pattern (fnmatch)."""
    names = []
    for n in convertible_names(model):
        k = model.get_submodule(n).kernel_size[0]
        if k in kernel_sizes and any(fnmatch.fnmatch(n, p) for p in include) \
                and not any(fnmatch.fnmatch(n, p) for p in exclude):
            names.append(n)
    if not names:
        raise ValueError(f"no candidate layers for include={list(include)}, exclude={list(exclude)}, "
                         f"kernel_sizes={list(kernel_sizes)}; convertible convs: {', '.join(convertible_names(model))}")
    return names


def basis_params_saved(c_in: int, c_out: int, k: int, rank: int, coeff: str = "reduced") -> int:
    """Dense minus basis weights: ``C_out C_in k^2 - (r C_in k^2 + (C_out - r) r)`` (reduced)."""
    mixed = c_out - rank if coeff == "reduced" else c_out
    return c_out * c_in * k * k - (rank * c_in * k * k + mixed * rank)


def paired_interval(control: torch.Tensor, converted: torch.Tensor, confidence: float = 0.95) -> tuple[float, float]:
    """Interval (points) for ``100 * (mean(control) - mean(converted))`` from per-image correctness (bool (N,)).

    Per image ``d_i = control_i - converted_i`` in {-1, 0, 1}; the mean's standard error is ``std(d) / sqrt(N)``.
    """
    if control.shape != converted.shape or control.ndim != 1 or len(control) < 2:
        raise ValueError(f"need two equal 1-D correctness vectors of length >= 2, got {tuple(control.shape)} "
                         f"and {tuple(converted.shape)}")
    d = control.double() - converted.double()
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    half = z * d.std(unbiased=True).item() / math.sqrt(len(d))
    return 100 * (d.mean().item() - half), 100 * (d.mean().item() + half)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, loader: TensorLoader, batches: int) -> None:
    """Re-estimate BatchNorm running statistics as a plain average over ``batches`` training batches."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts equally
    model.train()
    for i, (x, _) in enumerate(loader):
        if i >= batches:
            break
        model(x)
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.eval()


def finetune(model: nn.Module, loader: TensorLoader, steps: int, lr: float, momentum: float = 0.9) -> None:
    guard_convs(model)  # oneDNN #6035: a 1x1 stride-2 conv of a user's model
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, nesterov=True)
    model.train()
    done = 0
    while done < steps:
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done >= steps:
                break
        loader.set_epoch(loader.epoch + 1)
    model.eval()


def _zero_shot(model: nn.Module, loader: TensorLoader, cfg: ProxyConfig) -> None:
    """BatchNorm statistics re-estimated for the converted layers' outputs; no gradient step."""
    recalibrate_bn(model, loader, cfg.bn_batches)


def _finetune(model: nn.Module, loader: TensorLoader, cfg: ProxyConfig) -> None:
    """Recalibrate, fine-tune every parameter, recalibrate again (the steps moved the activations the first
    statistics were taken on)."""
    recalibrate_bn(model, loader, cfg.bn_batches)
    finetune(model, loader, cfg.finetune_steps, cfg.finetune_lr)
    recalibrate_bn(model, loader, cfg.bn_batches)


# name -> proxy(model, train loader, cfg): adapts an already converted model (or the unconverted control) in place
# and leaves it in eval mode; ``proxy_eval`` converts, seeds and scores around it. A new proxy is one entry here
# plus its test (tests/test_sensitivity.py parametrises over this dict).
PROXIES: dict[str, Callable[[nn.Module, TensorLoader, ProxyConfig], None]] = {
    "zero_shot": _zero_shot,
    "finetune": _finetune,
}


def check_proxies(proxies) -> None:
    """Raise (before any compute) if a name in ``proxies`` is not in ``PROXIES``."""
    for p in proxies:
        if p not in PROXIES:
            raise ValueError(f"unknown proxy {p!r}; valid choices: {', '.join(PROXIES)}")


def _check_cfg(cfg) -> None:
    if not isinstance(cfg, ProxyConfig):
        raise TypeError(f"cfg must be a ProxyConfig, got {type(cfg).__name__}")


def proxy_eval(model: nn.Module, layers: list[str], ratio, proxy: str, train_data, val_loader: TensorLoader,
               cfg: ProxyConfig) -> tuple[nn.Module, dict]:
    """Convert ``layers`` of a trained ``model`` and measure val accuracy with ``proxy`` (see the module docstring).

    ``layers=[]`` is the control: the unconverted model through the same proxy. Returns the (converted) model and
    ``evaluate``'s dict with per-image ``correct``. Used per layer by the sweep and for layer pairs by the
    additivity check, so both measure exactly the same thing.
    """
    check_proxies([proxy])
    _check_cfg(cfg)
    torch.manual_seed(cfg.seed)  # the "random" init draws here: the same layer gets the same weights in every job
    conv_model = (convert(model, list(layers), ratio=ratio, coeff=cfg.coeff, init=cfg.init) if layers
                  else copy.deepcopy(model))
    loader = TensorLoader(*train_data, cfg.batch_size, train=True, seed=cfg.seed, device=val_loader.device)
    with autocast(val_loader.device, cfg.amp):  # control and converted model alike: the delta compares like with like
        PROXIES[proxy](conv_model, loader, cfg)
    return conv_model, evaluate(conv_model, val_loader, amp=cfg.amp, per_sample=True)


def layer_sensitivity(model: nn.Module, layers: list[str], ratios, proxies, train_data, val_data,
                      cfg: ProxyConfig, *, confidence: float = 0.95, device="cpu", time_layer=None,
                      done: set | None = None, on_row=None, progress: bool | dict = True,
                      shard: tuple[int, int] = (0, 1)) -> list[dict]:
    """One row per (layer, ratio, proxy); see the module docstring. ``cfg`` sets the conversion and the proxies.
    ``done`` holds keys to skip (resume), ``on_row`` receives each row as soon as it is measured,
    ``time_layer(conv, basis) -> ms saved`` (optional) adds the measured fwd+bwd time saved. ``shard=(k, n)``: only
    every n-th job from the k-th (a worker's part of a split sweep); every job is seeded on its own, so the merged
    rows equal a single worker's."""
    k, n = shard
    if not (isinstance(k, int) and isinstance(n, int) and 0 <= k < n):
        raise ValueError(f"shard must be (k, n) with 0 <= k < n, got {shard!r}")
    check_proxies(proxies)
    _check_cfg(cfg)
    device = torch.device(device)
    model = copy.deepcopy(model).to(device).eval()
    val_loader = TensorLoader(*val_data, 1000, train=False, device=device)
    base = evaluate(model, val_loader, amp=cfg.amp)
    records = {r.name: r for r in conv_layers(model)}
    rows, done = [], done or set()
    jobs = [(l, r, p) for l in layers for r in ratios for p in proxies][k::n]
    controls = {}  # proxy -> evaluate() of the unconverted model through that proxy; measured when first needed
    bar = tqdm(jobs, desc="sensitivity", disable=progress is False, **(progress if isinstance(progress, dict) else {}))
    for layer, ratio, proxy in bar:
        if (layer, float(ratio), proxy) in done:
            continue
        t0 = time.perf_counter()
        if proxy not in controls:
            controls[proxy] = proxy_eval(model, [], 1.0, proxy, train_data, val_loader, cfg)[1]
        ctrl = controls[proxy]
        conv_model, ev = proxy_eval(model, [layer], ratio, proxy, train_data, val_loader, cfg)
        rec = records[layer]
        rank = resolve_rank(rec.out_channels, ratio=ratio)
        lo, hi = paired_interval(ctrl["correct"], ev["correct"], confidence)
        row = {"layer": layer, "ratio": float(ratio), "proxy": proxy, "rank": rank,
               "baseline_val_acc": base["acc"], "control_val_acc": ctrl["acc"], "val_acc": ev["acc"],
               "delta_acc": 100 * (ctrl["acc"] - ev["acc"]), "ci_low": lo, "ci_high": hi, "n_val": ev["n"],
               "params_saved": basis_params_saved(rec.in_channels, rec.out_channels, rec.kernel_size[0], rank,
                                                 cfg.coeff),
               "macs_saved": rec.macs - count_macs(conv_model.get_submodule(layer), (1, rec.in_channels, *rec.input_hw)),
               "time_saved_ms": None}
        if time_layer is not None:
            row["time_saved_ms"] = time_layer(model.get_submodule(layer), conv_model.get_submodule(layer), rec)
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


def select_layers(rows, *, proxy: str, objective: str = "params", max_loss: float = 0.5, order=None) -> dict:
    """Greedy knapsack over (layer, ratio) options of ``proxy``: most ``objective`` saved per point of loss first.

    Loss per option is ``max(delta_acc, 0)`` (an improvement is not spent on other layers); options are sorted by
    ``(-saving/max(loss, 1e-3), -saving, layer order, ratio)`` so ties resolve deterministically, and each is taken
    if its layer is not chosen yet and the summed loss stays within ``max_loss``.
    """
    check_choice(objective, OBJECTIVES, "objective")
    if not (isinstance(max_loss, (int, float)) and max_loss >= 0):
        raise ValueError(f"max_loss must be a number >= 0 (points), got {max_loss!r}")
    key = {"params": "params_saved", "macs": "macs_saved", "time": "time_saved_ms"}[objective]
    opts = [r for r in rows if r["proxy"] == proxy]
    if not opts:
        proxies = sorted({r["proxy"] for r in rows})
        raise ValueError(f"no sensitivity rows for proxy {proxy!r}; measured proxies: {proxies}")
    if any(r[key] is None for r in opts):
        raise ValueError(f"objective {objective!r} needs {key} in every row")
    order = order or list(dict.fromkeys(r["layer"] for r in opts))
    pos = {n: i for i, n in enumerate(order)}

    def sort_key(r):
        loss = max(r["delta_acc"], 0.0)
        return (-r[key] / max(loss, 1e-3), -r[key], pos[r["layer"]], r["ratio"])

    chosen, total = {}, 0.0
    for r in sorted(opts, key=sort_key):
        loss = max(r["delta_acc"], 0.0)
        if r["layer"] in chosen or r[key] <= 0 or total + loss > max_loss + 1e-12:
            continue
        chosen[r["layer"]] = r
        total += loss
    layers = [n for n in order if n in chosen]
    return {"layers": layers, "ratios": {n: chosen[n]["ratio"] for n in layers},
            "predicted_loss": total, "params_saved": sum(chosen[n]["params_saved"] for n in layers),
            "macs_saved": sum(chosen[n]["macs_saved"] for n in layers),
            "time_saved_ms": sum(chosen[n]["time_saved_ms"] or 0.0 for n in layers),
            "method": {"proxy": proxy, "objective": objective, "max_loss": max_loss, "algorithm": "greedy knapsack"}}


def matched_subset(records, candidates: list[str], target_params: int, ratios, *, order: str = "random",
                   seed: int = 0, coeff: str = "reduced") -> dict:
    """A layer subset, each layer at one of ``ratios``, whose parameter saving is as close to ``target_params`` as a
    greedy pass gets: the comparison variants at equal savings.

    Layers are visited in ``order`` (``random`` with ``seed``, or ``largest`` params first); each takes the ratio
    (or none) that brings the total closest to the target, ties to the larger (gentler) ratio. The comparison
    subsets thus get the same freedom of ratios as the selection and differ only in which layers they pick; a
    single ratio could neither reach every target (the selection may save more than all layers at 0.5) nor land
    near it (one big layer can overshoot by a third of the target).
    """
    recs = {r.name: r for r in records if r.name in candidates}
    ratios = sorted({float(check_ratio(q)) for q in ratios}, reverse=True)
    if order == "random":
        g = torch.Generator().manual_seed(seed)
        seq = [candidates[i] for i in torch.randperm(len(candidates), generator=g).tolist()]
    elif order == "largest":
        seq = sorted(candidates, key=lambda n: (-recs[n].params, candidates.index(n)))
    else:
        raise ValueError(f"unknown order {order!r}; valid choices: random, largest")

    def saving(n, q):
        r = recs[n]
        return basis_params_saved(r.in_channels, r.out_channels, r.kernel_size[0],
                                  resolve_rank(r.out_channels, ratio=q), coeff)
    chosen, saved = {}, 0
    for n in seq:
        best = min(ratios, key=lambda q: abs(saved + saving(n, q) - target_params))
        if abs(saved + saving(n, best) - target_params) < abs(saved - target_params):
            chosen[n] = best
            saved += saving(n, best)
    if not chosen:  # a target below every single option's saving: the first layer at the gentlest ratio
        chosen, saved = {seq[0]: ratios[0]}, saving(seq[0], ratios[0])
    layers = [n for n in candidates if n in chosen]
    return {"layers": layers, "ratios": {n: chosen[n] for n in layers}, "params_saved": saved,
            "order": order, "seed": seed if order == "random" else None}
