"""Is the fast sensitivity proxy right? Faithfulness and additivity against real retraining (arXiv 2408.06024).

The sensitivity search (``sensitivity.py``) ranks layers by a cheap proxy and the selection's knapsack adds up
single-layer proxy drops. Both rest on assumptions that are measured here, on sampled layers and layer pairs:

    real_drop(S) = 100 * (acc(retrain(baseline)) - acc(retrain(convert(baseline, S))))

``retrain`` is ``epochs`` more epochs of the package's training loop (SGD, cosine schedule from ``lr``, the same
seed and so the same batches) on the trained baseline, after converting the layer set ``S`` from the trained filters
(as the switch schedule does). The control run (no conversion) takes the effect of the extra training itself out of
the difference, so what remains is the conversion's cost after real training, not after a few proxy steps.

- **Faithfulness**: Spearman rank correlation between the proxy drop and the real drop over the sampled layers
  (``1``: the proxy orders layers exactly as retraining does), with a percentile bootstrap interval over the layers
  (``bootstrap_spearman``); each real drop has a paired interval over the validation images.
- **Additivity**: for sampled pairs ``(a, b)``, ``drop(a, b)`` against ``drop(a) + drop(b)``, with the proxy and with
  retraining (the knapsack assumes they are equal).
"""
from __future__ import annotations

import copy
import itertools
import math
import time

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from basisconv.experiment import search
from basisconv.experiment.loader import TensorLoader
from basisconv.core.progress import bar as progress_bar
from basisconv.core.evidence import bootstrap_spearman, paired_interval, spearman
from basisconv.core.sensitivity import ProxyConfig, accuracy, check_proxies, proxy_eval
from basisconv.core.surgery import convert
from basisconv.experiment.train import TrainConfig, evaluate, train


def sample_layers(candidates: list[str], n: int) -> list[str]:
    """``n`` layers spread evenly over the network depth (``n <= 0`` or ``n >= len``: all), in model order.

    Evenly spaced rather than random: a handful of layers should cover early, middle and late stages.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValueError(f"number of layers must be an int (0 = all), got {n!r}")
    if n <= 0 or n >= len(candidates):
        return list(candidates)
    if n == 1:
        return [candidates[len(candidates) // 2]]
    idx = sorted({round(i * (len(candidates) - 1) / (n - 1)) for i in range(n)})
    return [candidates[i] for i in idx]


def sample_pairs(layers: list[str], n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` distinct unordered pairs of ``layers`` drawn with ``seed`` (fewer if there are fewer), model order."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"number of pairs must be an int >= 0, got {n!r}")
    pairs = list(itertools.combinations(layers, 2))
    g = torch.Generator().manual_seed(seed)
    take = sorted(torch.randperm(len(pairs), generator=g)[:n].tolist())
    return [pairs[i] for i in take]


def retrain_config(train_params: dict, *, epochs: int, lr: float, seed: int) -> TrainConfig:
    """The retraining schedule: the ``train`` section's optimiser settings, ``epochs`` of cosine decay from ``lr``."""
    keys = set(TrainConfig.__dataclass_fields__) - {"epochs", "lr", "schedule", "warmup_epochs", "seed"}
    cfg = {k: v for k, v in train_params.items() if k in keys}
    return TrainConfig(**cfg, epochs=epochs, lr=lr, schedule="cosine", warmup_epochs=0, seed=seed)


def retrain_eval(model: nn.Module, layers, ratio, train_data, val_data, cfg: TrainConfig, *, init: str = "qr",
                 coeff: str = "reduced", device="cpu", progress: bool | dict = False) -> dict:
    """``evaluate``'s dict (``acc``, ``n``, per-image ``correct``) on ``val_data`` of ``model`` with ``layers``
    converted (none: the control), then retrained with ``cfg``. Per-image correctness makes the real drop's
    interval a paired one, like the sweep's."""
    # the control is a deep copy: train() must not update the caller's baseline in place
    net = convert(model, list(layers), ratio=ratio, coeff=coeff, init=init) if layers else copy.deepcopy(model)
    res = train(net, train_data, None, cfg, device=device, progress=progress)  # scored once, below
    loader = TensorLoader(*val_data, cfg.eval_batch_size, train=False, device=torch.device(device),
                          channels_last=cfg.channels_last)
    return evaluate(res.model, loader, amp=cfg.amp, per_sample=True)


def pack_correct(correct: torch.Tensor) -> str:
    """Per-image correctness (bool (N,)) as a hex string: a resume-log row stays one short JSON line."""
    bits = np.packbits(correct.cpu().numpy().astype(np.uint8))
    return bits.tobytes().hex()


def unpack_correct(hexstr: str, n: int) -> torch.Tensor:
    return torch.from_numpy(np.unpackbits(np.frombuffer(bytes.fromhex(hexstr), dtype=np.uint8))[:n].astype(bool))


def measure(model: nn.Module, layers: list[str], pairs: list[tuple[str, str]], ratio: float, train_data,
            val_data, cfg: TrainConfig, *, proxies=(), proxy_val_data=None, proxy_cfg: ProxyConfig | None = None,
            proxy_batch_size: int = 256, device="cpu", done: set | None = None, on_row=None,
            progress: bool | dict = True, shard: tuple[int, int] = (0, 1), retrain_data=None) -> list[dict]:
    """Every measurement the checks need, one row each: ``{"method", "layers", "val_acc", "n_val", "correct",
    "seconds"}`` (``correct``: per-image correctness, ``pack_correct``).

    ``method="real"``: the control (no layers), each single layer and each pair, retrained with ``cfg`` and scored
    on ``val_data``. ``method=<proxy>``: each pair through ``sensitivity.proxy_eval`` on ``proxy_val_data`` (the
    sweep's images and settings, ``proxy_cfg`` and ``proxy_batch_size``), since the single-layer proxy drops are
    the sweep's own rows.
    ``proxy_cfg`` (default ``ProxyConfig()``) also gives the ``init``/``coeff`` of the retrained conversions, so
    both methods convert the layers the same way.
    ``retrain_data``: the training images of the retraining runs (default ``train_data``; e.g. a stratified subset,
    to retrain every candidate layer within a budget); the proxy's batches always come from ``train_data``, as the
    sweep's do.
    ``done`` holds ``(method, layers tuple)`` keys to skip (resume); ``on_row`` gets each row when measured.
    ``shard=(k, n)``: only every n-th job from the k-th (one worker of a split run; jobs are independent).
    """
    device = torch.device(device)
    done = done or set()
    k, n = shard
    if not (isinstance(k, int) and isinstance(n, int) and 0 <= k < n):
        raise ValueError(f"shard must be (k, n) with 0 <= k < n, got {shard!r}")
    check_proxies(proxies)  # before the first retraining, not at the first proxy job
    proxy_cfg = ProxyConfig() if proxy_cfg is None else proxy_cfg
    if not isinstance(proxy_cfg, ProxyConfig):
        raise TypeError(f"proxy_cfg must be a ProxyConfig or None, got {type(proxy_cfg).__name__}")
    jobs = ([("real", ())] + [("real", (l,)) for l in layers] + [("real", tuple(p)) for p in pairs]
            + [(proxy, tuple(p)) for proxy in proxies for p in pairs])[k::n]
    if proxies and proxy_val_data is None:
        raise ValueError("proxy pairs need proxy_val_data (the sweep's validation images)")
    model = copy.deepcopy(model).to(device).eval()
    # one evaluation for every proxy job: building its loader copies the validation images to the device
    proxy_scores = search.correctness(proxy_val_data, device=device, amp=proxy_cfg.amp) if proxies else None
    proxy_batches = search.train_batches(train_data, proxy_batch_size, seed=proxy_cfg.seed, device=device)
    rows = []
    bar = progress_bar(jobs, progress=progress, desc="faithfulness")
    for method, subset in bar:
        if (method, subset) in done:
            continue
        t0 = time.perf_counter()
        if method == "real":
            ev = retrain_eval(model, subset, ratio, train_data if retrain_data is None else retrain_data, val_data,
                              cfg, init=proxy_cfg.init,
                              coeff=proxy_cfg.coeff, device=device)
        else:
            _, correct = proxy_eval(model, list(subset), ratio, method, proxy_batches, proxy_scores, proxy_cfg)
            ev = {"acc": accuracy(correct), "n": len(correct), "correct": correct}
        row = {"method": method, "layers": list(subset), "val_acc": ev["acc"], "n_val": ev["n"],
               "correct": pack_correct(ev["correct"]), "seconds": time.perf_counter() - t0}
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


def summarise(rows: list[dict], sens_rows: list[dict], ratio: float, layers: list[str],
              pairs: list[tuple[str, str]], proxies, confidence: float = 0.95,
              n_boot: int = 2000) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Per-layer table (real and proxy drops with their paired intervals), per-pair additivity table and the summary
    metrics (Spearman per proxy with its bootstrap ``confidence`` interval over the layers).

    Real drops are against the retrained control; proxy drops against the sweep's proxy control (the unconverted
    model through the same proxy), like the sweep's own single-layer drops. A real drop's interval is paired over
    the same validation images (``sensitivity.paired_interval``) when the rows carry per-image ``correct``.
    """
    acc = {(r["method"], tuple(r["layers"])): r["val_acc"] for r in rows}
    hits = {(r["method"], tuple(r["layers"])): unpack_correct(r["correct"], r["n_val"]) for r in rows
            if r.get("correct") and r.get("n_val")}
    if ("real", ()) not in acc:
        raise ValueError("no control run among the rows: measure() must run the 'real' control first")
    control = acc[("real", ())]
    sens = {(r["layer"], r["proxy"]): r for r in sens_rows if abs(float(r["ratio"]) - ratio) < 1e-9}
    missing = [(l, p) for l in layers for p in proxies if (l, p) not in sens]
    if missing:
        raise ValueError(f"sensitivity rows at ratio {ratio} missing for {missing[:5]}: rerun the sweep with this ratio")

    def real(subset):
        return 100 * (control - acc[("real", tuple(subset))])

    table = pd.DataFrame({"layer": layers, "ratio": ratio, "real_drop": [real((l,)) for l in layers],
                          **{f"{p}_drop": [float(sens[(l, p)]["delta_acc"]) for l in layers] for p in proxies}})
    ctrl_hits = hits.get(("real", ()))
    real_ci = [paired_interval(ctrl_hits, hits[("real", (l,))], confidence)
               if ctrl_hits is not None and ("real", (l,)) in hits else (math.nan, math.nan) for l in layers]
    table["real_ci_low"], table["real_ci_high"] = [c[0] for c in real_ci], [c[1] for c in real_ci]
    for p in proxies:  # the sweep's paired interval of each proxy drop (for error bars)
        for end in ("ci_low", "ci_high"):
            table[f"{p}_{end}"] = [float(sens[(l, p)][end]) if end in sens[(l, p)] else float("nan") for l in layers]
    frames, metrics = [], {"ratio": ratio, "n_layers": len(layers), "n_pairs": len(pairs), "control_val_acc": control,
                           "confidence": confidence, "n_boot": n_boot}
    for p in proxies:
        metrics[f"spearman_{p}"] = spearman(table[f"{p}_drop"], table.real_drop)
        lo, hi = bootstrap_spearman(table[f"{p}_drop"], table.real_drop, n_boot=n_boot, confidence=confidence)
        metrics[f"spearman_{p}_ci_low"], metrics[f"spearman_{p}_ci_high"] = lo, hi
    methods = {"real": ({l: real((l,)) for l in layers}, {pr: real(pr) for pr in pairs})}
    for p in proxies:
        base = float(next(r for r in sens.values() if r["proxy"] == p)["control_val_acc"])  # as the sweep's deltas
        methods[p] = ({l: float(sens[(l, p)]["delta_acc"]) for l in layers},
                      {pr: 100 * (base - acc[(p, tuple(pr))]) for pr in pairs if (p, tuple(pr)) in acc})
    for m, (singles, pair_drops) in methods.items():
        t = additivity_table(singles, pair_drops)
        t.insert(0, "method", m)
        frames.append(t)
        metrics[f"additivity_{m}_mean_abs_interaction"] = float(t.interaction.abs().mean()) if len(t) else None
    metrics["seconds"] = float(sum(r["seconds"] for r in rows))
    return table, pd.concat(frames, ignore_index=True), metrics


def additivity_table(singles: dict[str, float], pairs: dict[tuple[str, str], float]) -> pd.DataFrame:
    """One row per pair: measured pair drop, sum of the single drops, and their difference (points)."""
    rows = []
    for (a, b), d in pairs.items():
        s = singles[a] + singles[b]
        rows.append({"layer_a": a, "layer_b": b, "pair_drop": d, "sum_of_singles": s, "interaction": d - s})
    return pd.DataFrame(rows, columns=["layer_a", "layer_b", "pair_drop", "sum_of_singles", "interaction"])
