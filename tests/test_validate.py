"""Every params rule, before any compute: a message naming the key, the bad value and what is valid."""
import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from basisconv.pipeline.params import compose
from basisconv.pipeline.validate import _choices, _rules, problems, validate

ROOT = Path(__file__).resolve().parents[1]
PAPER = compose("paper", profile_dir=ROOT / "profiles")


@pytest.mark.parametrize("combo", [["paper"], ["cpu"], ["smoke"], ["cpu", "mirror"]])
def test_every_profile_is_valid(combo):
    assert problems(compose(*combo, profile_dir=ROOT / "profiles")) == []


BAD = [  # (section, key, bad value, fragment of the message)
    ("data", "val_size", 0, "an int >= 1"), ("data", "train_subset", -1, "an int >= 0"),
    ("data", "split_seed", 1.5, "an int >= 0"), ("data", "synthetic_per_class", "10", "an int >= 1"),
    ("data", "source", "", "data/sources.yaml"),
    ("model", "arch", "vgg", "one of resnet18"), ("model", "width", 0, "an int >= 1"),
    ("train", "epochs", 0, "an int >= 1"), ("train", "batch_size", True, "an int >= 1"),
    ("train", "lr", 0, "a number > 0"), ("train", "lr", float("nan"), "a number > 0"),
    ("train", "momentum", 1.0, "[0, 1)"), ("train", "nesterov", "yes", "true or false"),
    ("train", "weight_decay", -1e-4, ">= 0"), ("train", "label_smoothing", 1.0, "[0, 1)"),
    ("train", "schedule", "step", "one of onecycle, cosine"), ("train", "warmup_epochs", -1, ">= 0"),
    ("train", "eval_batch_size", 0, "an int >= 1"), ("train", "seeds", [], "non-empty list of distinct ints"),
    ("train", "seeds", "12", "non-empty list of distinct ints"), ("train", "seeds", [1, 1], "distinct"),
    ("train", "seeds", [-1], "ints >= 0"), ("train", "device", "tpu", "auto, cpu, cuda or cuda:N"),
    ("train", "amp", 1, "true or false"), ("train", "channels_last", None, "true or false"),
    ("train", "threads", -1, "an int >= 0"), ("train", "compile", "no", "true or false"),
    ("train", "tta", "on", "true or false"), ("train", "ema_decay", 1.0, "[0, 1)"),
    ("train", "processes", 0, "an int >= 1"),
    ("sensitivity", "include", [], "non-empty list of fnmatch"), ("sensitivity", "exclude", "conv1", "list of strings"),
    ("sensitivity", "kernel_sizes", [0], "ints >= 1"), ("sensitivity", "ratios", [2.0], "numbers in (0, 1]"),
    ("sensitivity", "ratios", [], "non-empty"), ("sensitivity", "init", "pca", "one of qr, svd, random"),
    ("sensitivity", "coeff", "diag", "one of reduced, full"), ("sensitivity", "proxies", ["oracle"], "zero_shot"),
    ("sensitivity", "bn_batches", 0, "an int >= 1"), ("sensitivity", "batch_size", 0, "an int >= 1"),
    ("sensitivity", "finetune_steps", 0, "an int >= 1"), ("sensitivity", "finetune_lr", 0, "> 0"),
    ("sensitivity", "eval_size", -5, ">= 0"), ("sensitivity", "resolution_size", -1, ">= 0"),
    ("sensitivity", "confidence", 1.0, "(0, 1)"),
    ("sensitivity", "workers", 0, "an int >= 1"), ("sensitivity", "selection_proxy", "oracle", "one of zero_shot"),
    ("sensitivity", "objective", "flops", "one of params, macs, time"), ("sensitivity", "max_loss", -1, ">= 0"),
    ("basis", "ratio", 0, "(0, 1]"), ("basis", "coeff", "x", "reduced"), ("basis", "init", "x", "qr"),
    ("basis", "switch_epoch", 0, "an int >= 1"), ("basis", "late_epoch", 0, "an int >= 1"),
    ("basis", "schedules", ["skip"], "scratch, switch, late"),
    ("basis", "variants", ["naive"], "baseline, baseline_fp32, all_layers"),
    ("basis", "variants", ["random"], "baseline, baseline_fp32, all_layers, selected"),  # a comparison: per schedule
    ("basis", "comparisons", {"skip": ["random"]}, "a mapping of schedules (scratch, switch, late)"),
    ("basis", "comparisons", {"switch": ["naive"]}, "comparisons from random, largest, largest_macs, spectral"),
    ("basis", "front_schedule", "skip", "one of scratch, switch, late, or \"\""),
    ("basis", "random_subsets", -1, ">= 0"), ("basis", "front_budgets", [1.0, 1.0], "distinct numbers > 0"),
    ("basis", "front_ratios", [0.0], "distinct numbers in (0, 1]"),
    ("faithfulness", "layers", -1, ">= 0"), ("faithfulness", "pairs", 1.5, ">= 0"), ("faithfulness", "ratio", 1.5, "(0, 1]"),
    ("faithfulness", "epochs", 0, ">= 1"), ("faithfulness", "lr", -0.1, "> 0"), ("faithfulness", "seed", -1, ">= 0"),
    ("faithfulness", "train_subset", -1, ">= 0"),
    ("faithfulness", "workers", 0, ">= 1"),
    ("benchmark", "ratios", [0], "(0, 1]"), ("benchmark", "batch_sizes", [], "non-empty"),
    ("benchmark", "memory_formats", ["nhwc"], "channels_last"), ("benchmark", "min_run_time", 0, "> 0"), ("benchmark", "model_min_run_time", -1, "> 0"),
    ("benchmark", "model_repeats", 0, ">= 1"), ("benchmark", "model_repeats", True, ">= 1"),
    ("benchmark", "model_batch_size", 0, ">= 1"), ("benchmark", "overhead_steps", 0, ">= 1"),
    ("benchmark", "threads", -1, ">= 0"), ("benchmark", "peers", ["cp"], "full_coeff, tucker"),
    ("benchmark", "onnx", "yes", "true or false"),
    ("report", "title", " ", "non-empty string"),
]


@pytest.mark.parametrize("section,key,bad,fragment", BAD)
def test_each_rule_names_key_value_and_what_is_valid(section, key, bad, fragment):
    P = copy.deepcopy(PAPER)
    P[section][key] = bad
    errs = problems(P)
    mine = [e for e in errs if e.startswith(f"{section}.{key} = {bad!r}: must be ")]
    assert mine and fragment in mine[0], errs


def test_every_key_of_the_schema_has_a_rule_and_is_tested():
    rules = _rules(_choices())
    schema = {s: set(v) for s, v in PAPER.items() if isinstance(v, dict)}
    assert {s: set(k) for s, k in rules.items()} == schema
    tested = {(s, k) for s, k, _, _ in BAD}
    assert tested == {(s, k) for s, keys in schema.items() for k in keys}


CROSS = [
    ({"train": {"warmup_epochs": 50}}, "train.warmup_epochs = 50: must be <= train.epochs = 40"),
    ({"train": {"processes": 3}}, "train.batch_size = 256: must be a multiple of train.processes = 3"),
    ({"basis": {"switch_epoch": 40}}, "basis.switch_epoch = 40: must be < train.epochs = 40"),
    ({"basis": {"late_epoch": 40, "schedules": ["late"]}}, "basis.late_epoch = 40: must be < train.epochs = 40"),
    ({"basis": {"front_schedule": "late"}}, "basis.front_schedule = 'late': must be a schedule some run trains with"),
    ({"basis": {"front_schedule": ""}}, "basis.front_budgets / front_ratios are set but basis.front_schedule is empty"),
    ({"sensitivity": {"resolution_size": 2000}},
     "sensitivity.resolution_size = 2000: must be < sensitivity.eval_size = 2000"),
    ({"sensitivity": {"selection_proxy": "zero_shot", "proxies": ["finetune"]}},
     "sensitivity.selection_proxy = 'zero_shot': must be one of sensitivity.proxies = ['finetune']"),
    ({"faithfulness": {"ratio": 0.3}}, "faithfulness.ratio = 0.3: must be one of sensitivity.ratios = [0.25, 0.5, 0.75]"),
    ({"data": {"source": "official", "train_subset": 46000}},
     "data.train_subset = 46000: must be <= 45,000 (the training images left after data.val_size = 5,000)"),
    ({"data": {"source": "official", "val_size": 50000}}, "data.val_size = 50000: must be < 50,000"),
    ({"basis": {"front_budgets": [0.5, 2.0]}},
     "basis.front_budgets = [0.5, 2.0]: must not hold sensitivity.max_loss = 0.5"),
    ({"basis": {"front_ratios": [0.5]}}, "basis.front_ratios = [0.5]: must not hold basis.ratio = 0.5"),
]


@pytest.mark.parametrize("change,message", CROSS)
def test_cross_section_rules(change, message):
    P = copy.deepcopy(PAPER)
    for section, kv in change.items():
        P[section].update(kv)
    assert message in "\n".join(problems(P))


def test_cross_rules_need_both_sections():
    assert problems({"basis": {**PAPER["basis"], "switch_epoch": 400}}) == []  # train absent: checked with it
    # late_epoch counts only where a run converts late (the paper profile has none)
    assert problems({"basis": {**PAPER["basis"], "late_epoch": 400}, "train": PAPER["train"]}) == []


def test_validate_lists_every_problem_at_once():
    P = copy.deepcopy(PAPER)
    P["train"]["seeds"], P["sensitivity"]["ratios"] = "12", [2.0]
    with pytest.raises(ValueError, match=r"3 invalid param\(s\) in params.yaml:\n  train.seeds = '12'.*\n  "
                                         r"sensitivity.ratios = \[2.0\]"):
        validate(P)


def test_params_check_command(tmp_path):
    P = copy.deepcopy(PAPER)
    P["train"]["seeds"] = []
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(P))
    run = subprocess.run([sys.executable, "-m", "basisconv.pipeline.params", "check", "--out", str(tmp_path / "params.yaml")],
                         cwd=ROOT, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT / "src"),
                                                                        "PATH": "/usr/bin:/bin"}, timeout=120)
    assert run.returncode == 1 and "train.seeds = []: must be a non-empty list of distinct ints" in run.stderr
    ok = subprocess.run([sys.executable, "-m", "basisconv.pipeline.params", "check"], cwd=ROOT, capture_output=True, text=True,
                        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert ok.returncode == 0 and "params.yaml: valid" in ok.stdout
