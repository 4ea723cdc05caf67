"""How long will ``dvc repro`` take here? A wall-time estimate from a few timed steps, and a stop before a
week-long run on a machine without a GPU (pipeline of the arXiv 2408.06024 replication).

The cost of every stage is counted in *training-image equivalents* (one image through one SGD step of the
baseline model at ``train.batch_size``; a forward-only image counts a third, the usual fwd : bwd cost of 1 : 2) and
multiplied by the seconds per image measured on this machine with a few steps of the real model. Basis variants
are costed as the baseline (an upper bound: they are cheaper), a switch run for the epochs after its snapshot only. Resumed work is not subtracted, so the estimate is
that of a fresh run.

    python -m basisconv.pipeline.estimate           # plan and estimate of every stage; exit 1 above the limit without GPU

``make repro`` runs it first. The limit is ``BASISCONV_MAX_HOURS`` (default 3) and applies only where no GPU is
present; ``BASISCONV_ALLOW_LONG=1`` (``make repro ALLOW_LONG=1``) runs anyway.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
import yaml

from basisconv.pipeline.variants import runs_per_seed, start_epoch

CIFAR_TRAIN = 50_000
MAX_HOURS = 3.0


def train_images(D: dict) -> int:
    """Training images per epoch of the data section."""
    if D["source"] == "synthetic":
        return 10 * D["synthetic_per_class"]
    return D["train_subset"] or CIFAR_TRAIN - D["val_size"]


def seconds_per_image(P: dict, device=None, min_run_time: float = 1.0) -> float:
    """Measured seconds of one training image through the baseline model (median SGD step / batch size)."""
    from basisconv.core.conv_guard import guard_convs
    from basisconv.experiment.data import CLASSES
    from basisconv.experiment.distributed import resolve_device
    from basisconv.experiment.models import INPUT_SHAPE, build_model
    from basisconv.experiment.precision import effective_amp
    from basisconv.perf.bench import sgd_step_fn, synthetic_batch, time_call
    device = resolve_device(device or P["train"]["device"])
    bs = min(P["train"]["batch_size"], 128)  # the cost per image hardly depends on the batch beyond this
    fmt = torch.channels_last if P["train"]["channels_last"] else torch.contiguous_format
    net = build_model(P["model"]["arch"], width=P["model"]["width"]).to(device, memory_format=fmt).train()
    guard_convs(net)  # oneDNN #6035 (build_model guards already; the estimate must not depend on that)
    x, y = synthetic_batch(bs, INPUT_SHAPE, len(CLASSES), device=device, memory_format=fmt)
    amp = effective_amp(P["train"]["amp"], device, warn=False)  # the precision the stages will train in
    step = sgd_step_fn(net, x, y, amp=amp)
    # torch.utils.benchmark through bench.time_call: warm-up calls excluded, device synchronised
    median_ms, _ = time_call(step, min_run_time=min_run_time, warmup=2)
    return median_ms / 1e3 / bs


def n_candidates(P: dict) -> int:
    from basisconv.experiment.models import build_model
    from basisconv.core.sensitivity import candidate_layers
    S = P["sensitivity"]
    net = build_model(P["model"]["arch"], width=P["model"]["width"])
    return len(candidate_layers(net, S["include"], S["exclude"], S["kernel_sizes"]))


def _sizes(P: dict, sizes: dict | None) -> tuple[int, int]:
    """(train, val) images: the prepared splits' sizes when known, else what the data section will prepare."""
    if sizes:
        return sizes["train"], sizes["val"]
    D = P["data"]
    return train_images(D), (D["val_size"] if D["source"] != "synthetic" else 10 * max(1, D["val_size"] // 10))


def _one_training(T: dict, n: int, val: int, epochs: int | None = None) -> float:
    """One training of ``epochs`` (default all) epochs: val every epoch and the test set once; flip TTA
    evaluates every image twice."""
    epochs = T["epochs"] if epochs is None else epochs
    return epochs * n + (val * epochs + 10_000) / 3 * (2 if T.get("tta") else 1)


def plan(P: dict, sizes: dict | None = None, stages=("baseline", "sensitivity", "faithfulness", "basis")) -> dict:
    """Per stage: what it runs and its cost in training-image equivalents. ``sizes``: the prepared splits'
    ``{"train", "val"}`` (a stage knows them; ``make repro`` derives them from the data section)."""
    T = P["train"]
    n, val = _sizes(P, sizes)
    out = {}
    if "baseline" in stages:
        out["baseline"] = {"what": f"1 training: {T['epochs']} epochs x {n:,} images",
                           "images": _one_training(T, n, val)}
    if "sensitivity" in stages or "faithfulness" in stages:
        S, cands = P["sensitivity"], n_candidates(P)
    if "sensitivity" in stages:
        from basisconv.pipeline.stages.sensitivity import searched_models
        models = len(searched_models(P))
        chained = {"zero_shot", "finetune"} <= set(S["proxies"])  # one job scores both (core.sensitivity)
        options = cands * len(S["ratios"])
        jobs = options * (len(S["proxies"]) - chained)
        eval_n = min(S["eval_size"] or val, val)
        # per option: a conversion's BatchNorm recalibration(s), the fine-tune steps (fwd+bwd ~ 3 forwards) and one
        # evaluation per proxy, in training-image equivalents (a forward ~ 1/3 of a training image)
        steps = S["finetune_steps"] * S["batch_size"] * ("finetune" in S["proxies"] or "finetune_all" in S["proxies"])
        recal = S["bn_batches"] * S["batch_size"] / 3 * (1 + ("finetune" in S["proxies"]) + len(S["proxies"]) - 1
                                                         - chained)
        per_option = recal + steps + len(S["proxies"]) * eval_n / 3
        out["sensitivity"] = {"what": f"{models} sweep{'s' * (models != 1)} of {jobs} proxy jobs ({cands} layers x "
                                      f"{len(S['ratios'])} ratios x {len(S['proxies'])} proxies"
                                      + (", zero_shot and finetune in one job" if chained else "") + ")",
                              "images": models * options * per_option}
    if "faithfulness" in stages:
        F_ = P["faithfulness"]
        retrain = 1 + (cands if F_["layers"] <= 0 else min(F_["layers"], cands)) + F_["pairs"]
        n_re = min(F_.get("train_subset") or n, n)
        out["faithfulness"] = {"what": f"{retrain} retrainings x {F_['epochs']} epochs x {n_re:,} images",
                               "images": retrain * (F_["epochs"] * n_re + val / 3 * F_["epochs"])}
    if "basis" in stages:
        B, seeds = P["basis"], len(T["seeds"])
        per_seed = runs_per_seed(B)  # {schedule: runs}, "-": the baseline
        extra_baselines = (seeds - 1) * per_seed["-"]  # the first seed's is the baseline stage's
        # baseline_fp32 is costed at twice a bf16 run (measured 1.8-2.4x on 2 cores) when amp is on, else not run
        fp32 = seeds * ("baseline_fp32" in B["variants"] and bool(T["amp"]))
        images = (extra_baselines + 2 * fp32) * _one_training(T, n, val)
        what = [f"{extra_baselines} more baseline seed{'s' * (extra_baselines != 1)}"] if extra_baselines else []
        what += [f"{fp32} fp32 baseline{'s' * (fp32 != 1)}"] if fp32 else []
        for schedule, k in per_seed.items():
            if schedule == "-" or not k:
                continue
            # a switch or late run starts from its seed's baseline snapshot: it trains only the epochs after it
            epochs = T["epochs"] - start_epoch(B, schedule)
            images += seeds * k * _one_training(T, n, val, epochs)
            what.append(f"{seeds} x {k} {schedule} run{'s' * (k != 1)} of {epochs} epoch{'s' * (epochs != 1)}")
        runs = extra_baselines + fp32 + seeds * sum(k for s_, k in per_seed.items() if s_ != "-")
        out["basis"] = {"what": f"{runs} trainings ({' + '.join(what)}; an upper bound: a subset that is another "
                                "run's model trains once)", "images": images}
    return out


def stage_line(P: dict, stage: str, sizes: dict | None = None) -> str:
    """One line for a stage's plan: what it runs and its estimated wall time here (a fresh run; resumed work is
    faster). Printed by the notebooks before the stage's first training; ``sizes`` default: the prepared splits'."""
    if sizes is None:
        from basisconv.experiment.io import read_json
        from basisconv.pipeline.layout import PREPARED
        sizes = read_json(Path(PREPARED) / "meta.json")["sizes"]
    e = estimate(P, sizes=sizes, stages=(stage,))
    st = e["stages"][stage]
    return (f"{stage}: {st['what']}; estimated {fmt_duration(st['seconds'])} on this machine "
            f"({e['seconds_per_image'] * 1e3:.2f} ms per training image; finished work is reused)")


def estimate(P: dict, sec_per_image: float | None = None, **plan_kw) -> dict:
    """``{"seconds_per_image", "stages": {name: {"what", "seconds"}}, "total_seconds"}``."""
    spi = seconds_per_image(P) if sec_per_image is None else sec_per_image
    stages = {k: {"what": v["what"], "seconds": v["images"] * spi} for k, v in plan(P, **plan_kw).items()}
    return {"seconds_per_image": spi, "stages": stages, "total_seconds": sum(v["seconds"] for v in stages.values())}


def fmt_duration(s: float) -> str:
    return f"{s / 3600:.1f} h" if s >= 5400 else f"{s / 60:.0f} min"


def check(est: dict, *, gpu: bool, max_hours: float, allow_long: bool, smaller: str = "") -> str | None:
    """The stop message when the estimate exceeds ``max_hours`` on a machine without GPU (None: go ahead);
    ``smaller``: the smaller profile offered instead, with the estimate just computed for it (``smaller_hint``)."""
    if gpu or allow_long or est["total_seconds"] <= max_hours * 3600:
        return None
    return (f"this `dvc repro` would take about {fmt_duration(est['total_seconds'])} on this machine without a GPU "
            f"(limit {max_hours:g} h). Choices: `make repro PROFILE=cpu` (or PROFILE=\"cpu mirror\" offline"
            + (f"; {smaller}" if smaller else "") + "), a GPU machine, or run anyway with `make repro ALLOW_LONG=1` "
            "(BASISCONV_ALLOW_LONG=1 dvc repro).")


def smaller_hint(profile: str = "cpu", sec_per_image: float | None = None) -> str:
    """The estimate of ``profile`` on this machine, in words, for the stop message (nothing quoted from an old run)."""
    from basisconv.pipeline.params import compose, resolve
    est = estimate(resolve(**compose(profile)), sec_per_image)
    return f"estimated {fmt_duration(est['total_seconds'])} here"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    from basisconv.pipeline.params import resolve
    given = yaml.safe_load(Path(args.params).read_text()) or {}
    P = resolve(**given)
    est = estimate(P)
    print(f"estimated wall time of a fresh `dvc repro` here ({P['profile']} profile, "
          f"{est['seconds_per_image'] * 1e3:.2f} ms per training image):")
    for name, st in est["stages"].items():
        print(f"  {name:13s} {fmt_duration(st['seconds']):>8s}  {st['what']}")
    print(f"  {'total':13s} {fmt_duration(est['total_seconds']):>8s}  (+ data and benchmark, a few minutes)")
    gpu, allow_long = torch.cuda.is_available(), os.environ.get("BASISCONV_ALLOW_LONG", "") not in ("", "0")
    max_hours = float(os.environ.get("BASISCONV_MAX_HOURS", MAX_HOURS))
    stop = check(est, gpu=gpu, max_hours=max_hours, allow_long=allow_long)
    if stop:  # only now: the smaller profile's estimate, for the message that offers it
        stop = check(est, gpu=gpu, max_hours=max_hours, allow_long=allow_long,
                     smaller=smaller_hint("cpu"))  # its own model: its own time per image
    if stop:
        raise SystemExit("stop: " + stop)


if __name__ == "__main__":
    main()
