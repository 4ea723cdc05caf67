import pytest
import torch

from basisconv import BasisConv2d
from basisconv.experiment.train import TrainConfig, TrainingDiverged
from basisconv.experiment.models import build_model
from basisconv.experiment.data import synthetic_cifar
from basisconv.experiment.train import train
from basisconv.experiment.train import lr_factor

SMALL = dict(batch_size=50, lr=0.05, warmup_epochs=0.5, eval_batch_size=100)


@pytest.fixture(scope="module")
def data():
    return synthetic_cifar("train", n_per_class=30, seed=0), synthetic_cifar("val", n_per_class=10, seed=0)


def _model(seed=0, width=4):
    torch.manual_seed(seed)
    return build_model("resnet18", width=width)


def test_loss_decreases_and_history(data):
    res = train(_model(), *data, TrainConfig(epochs=4, **SMALL), progress=False)
    h = res.history
    assert [r["epoch"] for r in h] == [1, 2, 3, 4]
    assert h[-1]["train_loss"] < 0.8 * h[0]["train_loss"]
    for r in h:
        for k in ("lr", "train_loss", "train_acc", "val_loss", "val_acc", "epoch_time", "images_per_s"):
            assert k in r and r[k] == r[k]  # present and not NaN
    assert res.train_time == pytest.approx(sum(r["epoch_time"] for r in h))


@pytest.mark.parametrize("stop_at", [1, 2])  # 1: the checkpoint is the last one before the switch
@pytest.mark.parametrize("basis", [None, dict(basis_layers=["layer1.0.conv1", "layer3.0.conv2"], switch_epoch=1),
                                   dict(basis_layers=["layer1.0.conv1"], switch_epoch=1, ema_decay=0.9, tta=True)])
def test_resume_gives_identical_weights(tmp_path, data, basis, stop_at):
    extra = basis or {}
    cfg = TrainConfig(epochs=3, **SMALL, **extra)
    full = train(_model(), *data, cfg, progress=False, checkpoint=tmp_path / "a.pt")
    # "kill" after epoch stop_at of the same 3-epoch schedule by raising from the callback
    class Stop(Exception):
        pass

    def stop(row):
        if row["epoch"] == stop_at:
            raise Stop

    with pytest.raises(Stop):
        train(_model(), *data, cfg, progress=False, checkpoint=tmp_path / "b.pt", on_epoch=stop)
    assert torch.load(tmp_path / "b.pt", weights_only=True)["epoch"] == stop_at
    resumed = train(_model(seed=123), *data, cfg, progress=False, checkpoint=tmp_path / "b.pt")
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [r["train_loss"] for r in full.history] == [r["train_loss"] for r in resumed.history]


def test_checkpoint_with_other_config_is_refused(tmp_path, data):
    train(_model(), *data, TrainConfig(epochs=1, **SMALL), progress=False, checkpoint=tmp_path / "c.pt")
    with pytest.raises(ValueError, match=r"different config \(keys \['lr'\]\)"):
        train(_model(), *data, TrainConfig(epochs=1, **{**SMALL, "lr": 0.01}), progress=False,
              checkpoint=tmp_path / "c.pt")


def test_nan_loss_stops_with_clear_error(tmp_path, data):
    cfg = TrainConfig(epochs=2, **{**SMALL, "lr": 1e30, "warmup_epochs": 0})
    with pytest.raises(TrainingDiverged, match=r"loss became (nan|inf) at epoch 1, step \d+"):
        train(_model(), *data, cfg, progress=False, checkpoint=tmp_path / "n.pt")
    assert not (tmp_path / "n.pt").exists()


def test_switch_converts_at_the_right_epoch(data):
    layers = ["layer2.0.conv1", "layer2.0.conv2"]
    cfg = TrainConfig(epochs=3, switch_epoch=2, basis_layers=layers, basis_ratio=0.5, **SMALL)
    res = train(_model(), *data, cfg, progress=False)
    assert [r["basis"] for r in res.history] == [False, False, True]
    for n in layers:
        assert isinstance(res.model.get_submodule(n), BasisConv2d)
    assert type(res.model.get_submodule("layer2.1.conv1")) is torch.nn.Conv2d


def test_from_scratch_basis_trains(data):
    cfg = TrainConfig(epochs=3, basis_layers="all", basis_ratio=0.5, **SMALL)
    res = train(_model(), *data, cfg, progress=False)
    assert all(r["basis"] for r in res.history)
    assert not any(type(m) is torch.nn.Conv2d for m in res.model.modules())
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]


def test_unknown_basis_layer_fails_before_training(data):
    cfg = TrainConfig(epochs=1, basis_layers=["layer7.conv"], **SMALL)
    with pytest.raises(ValueError, match="unknown layer 'layer7.conv'; valid layer names: conv1"):
        train(_model(), *data, cfg, progress=False)


@pytest.mark.parametrize("kwargs,match", [
    (dict(epochs=0), "epochs must be a positive int, got 0"),
    (dict(batch_size=-8), "batch_size must be a positive int, got -8"),
    (dict(lr=0), "lr must be a finite number > 0"),
    (dict(schedule="step"), "unknown schedule 'step'; valid choices: onecycle, cosine"),
    (dict(switch_epoch=5, epochs=5), r"switch_epoch must be an int in \[0, epochs=5\)"),
    (dict(basis_ratio=0), r"basis_ratio must be a number in \(0, 1\]"),
    (dict(basis_coeff="x"), "unknown basis_coeff 'x'"),
    (dict(basis_layers=[]), "empty list"),
    (dict(label_smoothing=1.0), "label_smoothing must be in"),
    (dict(ema_decay=1.0), r"ema_decay must be a number in \[0, 1\) \(0: no EMA\), got 1.0"),
    (dict(tta="yes"), "tta must be true or false, got 'yes'"),
])
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_lr_schedule_shape(schedule):
    f = [lr_factor(s, 100, 10, schedule) for s in range(100)]
    assert f[9] == 1.0 and all(a < b for a, b in zip(f[:10], f[1:10]))
    assert all(a >= b for a, b in zip(f[10:], f[11:])) and f[-1] < 0.02


@pytest.mark.slow
@pytest.mark.timeout(600)  # compiles forward and backward: about a minute on 2 cores
def test_compiled_training_matches_eager(data):
    """train.compile: torch.compile runs the steps (through the switch), the weights stay the plain module's."""
    cfg = dict(epochs=2, basis_layers=["layer2.0.conv1"], switch_epoch=1, **SMALL)
    eager = train(_model(), *data, TrainConfig(**cfg), progress=False)
    compiled = train(_model(), *data, TrainConfig(compile=True, **cfg), progress=False)
    assert type(compiled.model).__name__ == "CifarResNet"
    assert compiled.model.state_dict().keys() == eager.model.state_dict().keys()  # no _orig_mod. prefixes
    for a, b in zip(eager.history, compiled.history):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-3)


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_switch_run_from_its_baseline_snapshot_is_bit_identical(tmp_path, data, ema):
    """A switch run continued from its baseline's checkpoint at the switch epoch equals the same run trained from
    step 0: weights, optimiser-dependent history and (with EMA) the averaged weights, bit for bit on CPU."""
    from basisconv.experiment.train import snapshot_path
    base_cfg = TrainConfig(epochs=3, ema_decay=ema, **SMALL)
    sw = dict(basis_layers=["layer1.0.conv1", "layer3.0.conv2"], basis_ratio=0.5, switch_epoch=2)
    cfg = TrainConfig(epochs=3, ema_decay=ema, **SMALL, **sw)
    train(_model(), *data, base_cfg, progress=False, checkpoint=tmp_path / "base.ckpt", snapshot_epochs=(2,))
    snap = snapshot_path(tmp_path / "base.ckpt", 2)
    assert snap.name == "base.e2.ckpt" and torch.load(snap, weights_only=True)["epoch"] == 2
    full = train(_model(), *data, cfg, progress=False)
    cont = train(_model(seed=99), *data, cfg, progress=False, checkpoint=tmp_path / "v.ckpt", start_from=snap)
    a, b = full.model.state_dict(), cont.model.state_dict()
    assert a.keys() == b.keys() and any(isinstance(m, BasisConv2d) for m in cont.model.modules())
    for k in a:
        assert torch.equal(a[k], b[k]), k
    strip = [{k: v for k, v in r.items() if k not in ("epoch_time", "images_per_s", "eval_time")} for r in full.history]
    assert strip == [{k: v for k, v in r.items() if k not in ("epoch_time", "images_per_s", "eval_time")}
                     for r in cont.history]


def test_start_from_refuses_another_run(tmp_path, data):
    from basisconv.experiment.train import snapshot_path
    train(_model(), *data, TrainConfig(epochs=3, **SMALL), progress=False, checkpoint=tmp_path / "b.ckpt",
          snapshot_epochs=(1, 2))
    sw = dict(basis_layers=["layer1.0.conv1"], switch_epoch=1)
    with pytest.raises(ValueError, match=r"different training config \(keys \['lr'\]\); only basis_layers"):
        train(_model(), *data, TrainConfig(epochs=3, **{**SMALL, "lr": 0.01}, **sw), progress=False,
              start_from=snapshot_path(tmp_path / "b.ckpt", 1))
    with pytest.raises(ValueError, match="is of epoch 2, but a run that switches at epoch 1 can only start from"):
        train(_model(), *data, TrainConfig(epochs=3, **SMALL, **sw), progress=False,
              start_from=snapshot_path(tmp_path / "b.ckpt", 2))


def test_weight_ema_known_answer():
    from basisconv.experiment.train import WeightEma
    m = torch.nn.Sequential(torch.nn.Linear(2, 1, bias=False), torch.nn.BatchNorm1d(1))
    with torch.no_grad():
        m[0].weight.fill_(1.0)
    ema = WeightEma(m, 0.5)
    with torch.no_grad():
        m[0].weight.fill_(3.0)
    m[1].num_batches_tracked += 7
    ema.update(m)  # step 1: decay min(0.5, 2/11) = 2/11, so 1 + (9/11) * (3 - 1)
    assert ema.module[0].weight.flatten().tolist() == pytest.approx([1 + 9 / 11 * 2] * 2)
    assert int(ema.module[1].num_batches_tracked) == 7  # integer buffers are copied
    for _ in range(50):
        ema.update(m)
    assert ema.module[0].weight.flatten().tolist() == pytest.approx([3.0, 3.0], abs=1e-6)
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_flip_tta_averages_the_mirror_image():
    """A model that sees only the left half of the image: TTA averages it with the right half (mirrored)."""
    from basisconv.experiment.loader import TensorLoader
    from basisconv.experiment.train import evaluate

    class LeftHalf(torch.nn.Module):
        def forward(self, x):  # (B, 3, H, W) -> 2 logits: mean of the left half vs 0
            left = x[..., : x.shape[-1] // 2].mean((1, 2, 3))
            return torch.stack([left, torch.zeros_like(left)], 1) * 100
    x = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    x[:2, :, :, :4] = 255  # bright left half: class 0 without TTA
    x[:2, :, :, 4:] = 0
    x[2:, :, :, 4:] = 255  # bright right half: class 1 without TTA, class 0 with it (the mirror is bright left)
    y = torch.tensor([0, 0, 0, 0])
    loader = TensorLoader(x, y, 4, train=False)
    plain, tta = evaluate(LeftHalf(), loader), evaluate(LeftHalf(), loader, tta=True)
    assert plain["acc"] == 0.5 and tta["acc"] == 1.0
