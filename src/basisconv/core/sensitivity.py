"""Per-layer sensitivity analysis (arXiv 2408.06024, the sensitivity-based basis search).

For each candidate conv and each ratio, only that layer of the trained baseline is converted to a basis layer and
the validation accuracy is measured with a cheap proxy:

- ``zero_shot``: BatchNorm statistics recalibrated on a few training batches, no gradient step;
- ``finetune``: the same, then ``finetune_steps`` SGD steps on training batches that train the converted layer
  alone (its basis filters and coefficients; the rest of the network frozen), and the statistics once more;
- ``finetune_all``: the same steps on every parameter of the network. Its control (the unconverted model through
  the same steps) drifts: a trained model's schedule ends at a learning rate near 0, so a few steps at
  ``finetune_lr`` move the whole network away from its optimum, and the deltas then mix that damage with the
  layer's. ``finetune``'s control has nothing to train and stays the recalibrated baseline.

``PROXIES`` is the registry of proxies (name -> function adapting a converted model in place) and ``ProxyConfig``
holds their settings; a new proxy is one entry plus its test (tests/test_sensitivity.py parametrises over it).

Sensitivity (points) ``delta = 100 * (acc_control - acc_converted)``: the control is the unconverted baseline put
through the same proxy (same BN batches, same fine-tune steps), so the delta is the conversion's effect alone and not
that of recalibrating or fine-tuning. Both are scored on the same validation images, so the interval is a paired
one (normal approximation on the per-image differences of correctness, as in McNemar's test), much narrower than
an interval on either accuracy alone. The selection from these rows is ``basisconv.core.selection``.

Nothing here assumes CIFAR: the caller passes its training batches (any iterable of ``(x, y)``, e.g. a
``DataLoader``, or a zero-argument callable returning a fresh one per job), its evaluation (a callable
``evaluate(model) -> bool tensor (N,)`` of per-example correctness, in a fixed example order, so the paired
intervals hold) and an example input (its shape gives every layer's input size and so the MAC counts).
"""
from __future__ import annotations

import copy
import fnmatch
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from basisconv.core.checks import check_choice
from basisconv.core.basis import COEFF_CHOICES, INIT_CHOICES, BasisConv2d, resolve_rank
from basisconv.core.conv_guard import guard_convs
from basisconv.core.counting import basis_params_saved, count_macs
from basisconv.core.evidence import paired_interval
from basisconv.core.progress import bar as progress_bar
from basisconv.core.surgery import conv_layers, convert, convertible_names

Batches = Iterable | Callable[[], Iterable]  # training batches (x, y), or a factory of a fresh iterable per job
Evaluate = Callable[[nn.Module], torch.Tensor]  # model -> bool (N,) per-example correctness, fixed order


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
    (``basisconv.experiment.precision``; the caller passes the effective value, so fp32 where the device lacks bf16).
    """
    init: str = "qr"
    coeff: str = "reduced"
    bn_batches: int = 20
    finetune_steps: int = 100
    finetune_lr: float = 0.01
    seed: int = 0
    amp: bool = False

    def __post_init__(self):
        check_choice(self.init, INIT_CHOICES, "init")
        check_choice(self.coeff, COEFF_CHOICES, "coeff")
        for name in ("bn_batches", "finetune_steps"):
            _positive_int(getattr(self, name), name)
        lr = self.finetune_lr
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf:
            raise ValueError(f"finetune_lr must be a finite number > 0, got {lr!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")
        if not isinstance(self.amp, bool):
            raise ValueError(f"amp must be true or false, got {self.amp!r}")


@dataclass(frozen=True)
class SensitivityRow(Mapping):
    """One measured option of the sweep: ``layer`` converted alone at ``ratio`` (rank ``rank``) and scored by
    ``proxy``. Accuracies are fractions on the ``n_val`` evaluation examples; ``delta_acc`` (points) is the
    control's accuracy minus the converted model's, ``[ci_low, ci_high]`` its paired interval; the savings are the
    layer's (``time_saved_ms`` when a timer was given); ``seconds`` its share of the job's wall time. With a
    ``subset``, the ``*_subset`` fields hold the same drop on those examples alone.

    A mapping too (``row["delta_acc"]``, ``dict(row)``, ``to_dict()``), so rows read back from JSON and rows just
    measured are used alike, and ``pandas.DataFrame(rows)`` takes a list of them."""
    layer: str
    ratio: float
    proxy: str
    rank: int
    baseline_val_acc: float
    control_val_acc: float
    val_acc: float
    delta_acc: float
    ci_low: float
    ci_high: float
    n_val: int
    params_saved: int
    macs_saved: int
    time_saved_ms: float | None
    seconds: float
    delta_acc_subset: float | None = None
    ci_low_subset: float | None = None
    ci_high_subset: float | None = None
    n_val_subset: int | None = None

    def to_dict(self) -> dict:
        """The row as JSON keeps it (the subset fields only where measured)."""
        d = asdict(self)
        return d if self.n_val_subset is not None else {k: v for k, v in d.items() if not k.endswith("_subset")}

    def __getitem__(self, key: str):
        return self.to_dict()[key]

    def __iter__(self):
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


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


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _next_epoch(batches) -> None:
    """Advance a loader that has epochs (``set_epoch``/``epoch``, as ``TensorLoader``) when a pass wraps around."""
    if hasattr(batches, "set_epoch") and hasattr(batches, "epoch"):
        batches.set_epoch(batches.epoch + 1)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, loader: Iterable, batches: int) -> None:
    """Re-estimate BatchNorm running statistics as a plain average over ``batches`` training batches.

    ``loader`` yields ``(x, y)`` (``y`` unused); ``x`` is moved to the model's device."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts equally
    model.train()
    device = _device(model)
    for i, (x, _) in enumerate(loader):
        if i >= batches:
            break
        model(x.to(device, non_blocking=True))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.eval()


def finetune(model: nn.Module, loader: Iterable, steps: int, lr: float, momentum: float = 0.9,
             params: Iterable[nn.Parameter] | None = None) -> None:
    """``steps`` Nesterov SGD steps of cross-entropy on ``loader``'s batches (passes repeat as needed).

    ``params``: the parameters to train (default: all); the others are frozen for the steps (no gradients
    computed for them) and their ``requires_grad`` restored afterwards."""
    guard_convs(model)  # oneDNN #6035: a 1x1 stride-2 conv of a user's model
    params = list(model.parameters()) if params is None else list(params)
    if not params:
        raise ValueError("finetune: no parameters to train")
    chosen = {id(p) for p in params}
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(id(p) in chosen)
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=True)
    model.train()
    device = _device(model)
    done = 0
    try:
        while done < steps:
            for x, y in loader:
                loss = F.cross_entropy(model(x.to(device, non_blocking=True)), y.to(device, non_blocking=True))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                done += 1
                if done >= steps:
                    break
            _next_epoch(loader)
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
    model.eval()


def _zero_shot(model: nn.Module, loader: Iterable, cfg: ProxyConfig) -> None:
    """BatchNorm statistics re-estimated for the converted layers' outputs; no gradient step."""
    recalibrate_bn(model, loader, cfg.bn_batches)


def _finetune(model: nn.Module, loader: Iterable, cfg: ProxyConfig) -> None:
    """Recalibrate, fine-tune the basis layers alone (the converted layer's filters and coefficients), recalibrate
    again (the steps moved the activations the first statistics were taken on). The control has no basis layer:
    nothing to train, and a second recalibration on the same batches would give the same statistics."""
    recalibrate_bn(model, loader, cfg.bn_batches)
    params = [p for m in model.modules() if isinstance(m, BasisConv2d) for p in m.parameters()]
    if params:
        finetune(model, loader, cfg.finetune_steps, cfg.finetune_lr, params=params)
        recalibrate_bn(model, loader, cfg.bn_batches)


def _finetune_all(model: nn.Module, loader: Iterable, cfg: ProxyConfig) -> None:
    """Recalibrate, fine-tune every parameter, recalibrate again (see the module docstring: its control drifts)."""
    recalibrate_bn(model, loader, cfg.bn_batches)
    finetune(model, loader, cfg.finetune_steps, cfg.finetune_lr)
    recalibrate_bn(model, loader, cfg.bn_batches)


# name -> proxy(model, training batches, cfg): adapts an already converted model (or the unconverted control) in
# place and leaves it in eval mode; ``proxy_eval`` converts, seeds and scores around it. A new proxy is one entry
# here plus its test (tests/test_sensitivity.py parametrises over this dict).
PROXIES: dict[str, Callable[[nn.Module, Iterable, ProxyConfig], None]] = {
    "zero_shot": _zero_shot,
    "finetune": _finetune,
    "finetune_all": _finetune_all,
}


def check_proxies(proxies) -> None:
    """Raise (before any compute) if a name in ``proxies`` is not in ``PROXIES``."""
    for p in proxies:
        if p not in PROXIES:
            raise ValueError(f"unknown proxy {p!r}; valid choices: {', '.join(PROXIES)}")


def _check_cfg(cfg) -> None:
    if not isinstance(cfg, ProxyConfig):
        raise TypeError(f"cfg must be a ProxyConfig, got {type(cfg).__name__}")


def _check_callable(f, name: str) -> None:
    if not callable(f):
        raise TypeError(f"{name} must be a callable, got {type(f).__name__}")


def _correctness(evaluate: Evaluate, model: nn.Module) -> torch.Tensor:
    """``evaluate(model)`` checked: a 1-D bool (or 0/1) tensor, moved to the CPU."""
    was_training = model.training
    model.eval()
    try:
        c = evaluate(model)
    finally:
        model.train(was_training)
    if not isinstance(c, torch.Tensor) or c.ndim != 1 or len(c) < 2:
        raise ValueError("evaluate(model) must return a 1-D tensor of per-example correctness (bool, length >= 2), "
                         f"got {type(c).__name__}{'' if not isinstance(c, torch.Tensor) else tuple(c.shape)}")
    return c.detach().cpu().bool()


def accuracy(correct: torch.Tensor) -> float:
    """The share of correct examples in a per-example correctness vector."""
    return int(correct.sum()) / len(correct)


def proxy_eval(model: nn.Module, layers: list[str], ratio, proxy: str, train_batches: Batches, evaluate: Evaluate,
               cfg: ProxyConfig) -> tuple[nn.Module, torch.Tensor]:
    """Convert ``layers`` of a trained ``model`` and score it with ``proxy`` (see the module docstring).

    ``layers=[]`` is the control: the unconverted model through the same proxy. Returns the (converted) model and
    its per-example correctness from ``evaluate``. Used per layer by the sweep and for layer pairs by the
    additivity check, so both measure exactly the same thing.
    """
    check_proxies([proxy])
    _check_cfg(cfg)
    _check_callable(evaluate, "evaluate")
    torch.manual_seed(cfg.seed)  # the "random" init draws here: the same layer gets the same weights in every job
    conv_model = (convert(model, list(layers), ratio=ratio, coeff=cfg.coeff, init=cfg.init) if layers
                  else copy.deepcopy(model))
    batches = train_batches() if callable(train_batches) else train_batches
    device = _device(conv_model)
    # control and converted model alike: the delta compares like with like
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp):
        PROXIES[proxy](conv_model, batches, cfg)
    return conv_model, _correctness(evaluate, conv_model)


def _progress(jobs: list, progress):
    """A console bar over ``jobs`` (``basisconv.core.progress``: silent without tqdm; a dict: tqdm's options)."""
    return progress_bar(jobs, progress=progress, desc="sensitivity")


# a proxy whose procedure begins with another proxy's whole procedure: ``finetune`` recalibrates BatchNorm exactly
# as ``zero_shot`` does (same seed, same batches) before its steps, so a sweep that measures both scores the
# zero-shot state on the way (``_finetune_rest`` continues from it) instead of converting and recalibrating twice
CONTINUES = {"finetune": "zero_shot"}


def _finetune_rest(model: nn.Module, loader: Iterable, cfg: ProxyConfig) -> None:
    """``_finetune`` after its first recalibration: the steps on the basis layers and the second recalibration."""
    params = [p for m in model.modules() if isinstance(m, BasisConv2d) for p in m.parameters()]
    if params:
        finetune(model, loader, cfg.finetune_steps, cfg.finetune_lr, params=params)
        recalibrate_bn(model, loader, cfg.bn_batches)


def proxy_chain_eval(model: nn.Module, layers: list[str], ratio, train_batches: Batches, evaluate: Evaluate,
                     cfg: ProxyConfig) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """``proxy_eval`` of ``zero_shot`` and ``finetune`` in one job: convert and recalibrate once, score (zero_shot),
    continue with the fine-tune steps and the second recalibration, score again (finetune). The same computation as
    the two separate jobs (the same seed gives the same conversion and the same batches), at less cost."""
    _check_cfg(cfg)
    _check_callable(evaluate, "evaluate")
    torch.manual_seed(cfg.seed)
    conv_model = (convert(model, list(layers), ratio=ratio, coeff=cfg.coeff, init=cfg.init) if layers
                  else copy.deepcopy(model))
    batches = train_batches() if callable(train_batches) else train_batches
    device = _device(conv_model)
    out = {}
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp):
        _zero_shot(conv_model, batches, cfg)
    out["zero_shot"] = _correctness(evaluate, conv_model)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp):
        _finetune_rest(conv_model, batches, cfg)
    out["finetune"] = _correctness(evaluate, conv_model)
    return conv_model, out


def layer_sensitivity(model: nn.Module, layers: list[str], ratios, proxies, train_batches: Batches,
                      evaluate: Evaluate, example_input, cfg: ProxyConfig, *, confidence: float = 0.95,
                      time_layer=None, done: set | None = None, on_row=None, progress: bool | dict = True,
                      shard: tuple[int, int] = (0, 1), subset: torch.Tensor | None = None) -> list[SensitivityRow]:
    """One ``SensitivityRow`` per (layer, ratio, proxy) of a trained ``model``; see the module docstring.

    ``train_batches``: the proxies' training batches, an iterable of ``(x, y)`` or a callable returning a fresh
    one (called once per job, after seeding with ``cfg.seed``); ``evaluate(model)``: per-example correctness on
    the caller's validation data; ``example_input``: a tensor or a shape (batch 1 gives MACs per example) for the
    layers' input sizes. ``cfg`` sets the conversion and the proxies. ``done`` holds ``(layer, ratio, proxy)``
    keys to skip (resume), ``on_row`` receives each row as soon as it is measured, ``time_layer(conv, basis, rec)
    -> ms saved`` (optional) adds the measured time saved; it receives copies of the two layers, so nothing it does
    to them reaches a later job. ``shard=(k, n)``: only every n-th job from the k-th (a worker's part of a split
    sweep); every job is seeded on its own and converts the same unmodified baseline, so a job's row does not depend
    on the jobs run before it in the process: merged shards and a resumed sweep equal a single straight worker's
    rows, their timings aside (tests/test_sensitivity.py). The model stays on its device and is not modified.

    ``subset``: indices into the evaluation's examples; each row then also holds the drop and its interval on those
    examples alone (``delta_acc_subset``, ``ci_low_subset``, ``ci_high_subset``, ``n_val_subset``): whether fewer
    evaluation images would resolve the same drops, from the same conversions. Where ``zero_shot`` and ``finetune``
    are both measured, the two rows of a (layer, ratio) come from one job (``proxy_chain_eval``); each row's
    ``seconds`` is its share of the job."""
    k, n = shard
    if not (isinstance(k, int) and isinstance(n, int) and 0 <= k < n):
        raise ValueError(f"shard must be (k, n) with 0 <= k < n, got {shard!r}")
    check_proxies(proxies)
    _check_cfg(cfg)
    _check_callable(evaluate, "evaluate")
    model = copy.deepcopy(model).eval()
    base = accuracy(_correctness(evaluate, model))
    records = {r.name: r for r in conv_layers(model, example_input)}
    unknown = [l for l in layers if l not in records]
    if unknown:
        raise ValueError(f"unknown layers {unknown}; convs of the model: {', '.join(records)}")
    rows, done = [], done or set()
    chained = all(p in proxies for p in ("zero_shot", "finetune"))
    # a job: (layer, ratio, the proxies it scores); chained proxies share one job, the others each have their own
    per_option = [("zero_shot", "finetune")] if chained else []
    per_option += [(p,) for p in proxies if not (chained and p in ("zero_shot", "finetune"))]
    jobs = [(l, r, ps) for l in layers for r in ratios for ps in per_option][k::n]
    controls = {}  # proxy -> correctness of the unconverted model through that proxy; measured when first needed

    def score(ps, layer_list, ratio):
        if len(ps) == 2:
            return proxy_chain_eval(model, layer_list, ratio, train_batches, evaluate, cfg)
        conv, c = proxy_eval(model, layer_list, ratio, ps[0], train_batches, evaluate, cfg)
        return conv, {ps[0]: c}

    for layer, ratio, ps in _progress(jobs, progress):
        todo = [p for p in ps if (layer, float(ratio), p) not in done]
        if not todo:
            continue
        ps = ps if len(todo) == len(ps) else tuple(todo)  # a resumed job scores only what is missing
        t0 = time.perf_counter()
        if any(p not in controls for p in ps):
            controls.update(score(ps, [], 1.0)[1])
        conv_model, corrects = score(ps, [layer], ratio)
        rec = records[layer]
        rank = resolve_rank(rec.out_channels, ratio=ratio)
        saved = {"params_saved": basis_params_saved(rec.in_channels, rec.out_channels, rec.kernel_size[0], rank,
                                                    cfg.coeff),
                 "macs_saved": rec.macs - count_macs(conv_model.get_submodule(layer),
                                                     (1, rec.in_channels, *rec.input_hw)),
                 "time_saved_ms": None}
        if time_layer is not None:
            # the timer gets copies: a timer that changes what it times (memory format, gradients, a guard) must not
            # reach the baseline the later jobs convert, or a job's row would depend on the jobs before it and a
            # resumed or sharded sweep would differ from a straight one
            saved["time_saved_ms"] = time_layer(copy.deepcopy(model.get_submodule(layer)),
                                                copy.deepcopy(conv_model.get_submodule(layer)), rec)
        seconds = (time.perf_counter() - t0) / len(ps)
        for proxy in ps:
            ctrl, correct = controls[proxy], corrects[proxy]
            lo, hi = paired_interval(ctrl, correct, confidence)
            sub = {}
            if subset is not None:
                c_sub, x_sub = ctrl[subset], correct[subset]
                lo_s, hi_s = paired_interval(c_sub, x_sub, confidence)
                sub = dict(delta_acc_subset=100 * (accuracy(c_sub) - accuracy(x_sub)), ci_low_subset=lo_s,
                           ci_high_subset=hi_s, n_val_subset=len(c_sub))
            row = SensitivityRow(layer=layer, ratio=float(ratio), proxy=proxy, rank=rank, baseline_val_acc=base,
                                 control_val_acc=accuracy(ctrl), val_acc=accuracy(correct),
                                 delta_acc=100 * (accuracy(ctrl) - accuracy(correct)), ci_low=lo, ci_high=hi,
                                 n_val=len(correct), seconds=seconds, **saved, **sub)
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows
