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
@pytest.mark.parametrize("basis", [None, dict(basis_layers=["layer1.0.conv1", "layer3.0.conv2"], switch_epoch=1)])
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
])
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_lr_schedule_shape(schedule):
    f = [lr_factor(s, 100, 10, schedule) for s in range(100)]
    assert f[9] == 1.0 and all(a < b for a, b in zip(f[:10], f[1:10]))
    assert all(a >= b for a, b in zip(f[10:], f[11:])) and f[-1] < 0.02


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
