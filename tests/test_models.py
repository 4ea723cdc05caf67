import re

import pytest
import torch
import torch.nn as nn
import torchvision

from basisconv import BasisConv2d, conv_layers, convert, count_params
from basisconv.experiment.models import build_model
from basisconv.experiment.models import ARCHS

# every registered architecture is checked at a small width (a new arch: one ARCHS entry plus its PARAMS row)
PARAMS = {"resnet18": 11_173_962, "resnet34": 21_282_122, "resnet50": 23_520_842}  # width 64, 10 classes
# torchvision's names: the stem, then layer<stage>.<block>.conv<i> and the projection shortcut's conv
CONV_NAME = re.compile(r"conv1|layer[1-4]\.\d+\.(conv\d|downsample\.0)")


def test_every_arch_has_a_param_count():
    assert set(PARAMS) == set(ARCHS)


@pytest.mark.parametrize("arch", list(ARCHS))
def test_param_counts(arch):
    assert count_params(build_model(arch, width=64)) == PARAMS[arch]


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("width,num_classes", [(4, 10), (8, 100)])
def test_forward_shapes_and_widths(arch, width, num_classes):
    m = build_model(arch, num_classes=num_classes, width=width)
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, num_classes)
    assert [m.get_submodule(f"layer{i}")[0].conv1.out_channels for i in range(1, 5)] == \
        [width, 2 * width, 4 * width, 8 * width]
    assert m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1)  # CIFAR stem, no max-pool
    assert not hasattr(m, "maxpool")


@pytest.mark.parametrize("arch", list(ARCHS))
def test_backward_gives_finite_grads(arch):
    torch.manual_seed(0)
    m = build_model(arch, width=4)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([1, 7])
    nn.functional.cross_entropy(m(x), y).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("arch", list(ARCHS))
def test_conv_names_are_torchvision_like(arch):
    m = build_model(arch, width=4)
    names = [n for n, mod in m.named_modules() if isinstance(mod, nn.Conv2d)]
    assert names[0] == "conv1" and all(CONV_NAME.fullmatch(n) for n in names), names
    if hasattr(torchvision.models, arch):  # same names as torchvision's model of that name (built on meta: no init)
        with torch.device("meta"):
            tv = getattr(torchvision.models, arch)()
        assert names == [n for n, mod in tv.named_modules() if isinstance(mod, nn.Conv2d)]


@pytest.mark.parametrize("arch", list(ARCHS))
def test_every_3x3_conv_converts(arch):
    torch.manual_seed(0)
    m = build_model(arch, width=8).eval()
    names = [r.name for r in conv_layers(m, (1, 3, 32, 32)) if r.kernel_size == (3, 3)]
    new = convert(m, names, ratio=0.5)
    assert all(isinstance(new.get_submodule(n), BasisConv2d) for n in names)
    y = new(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, 10) and torch.isfinite(y).all()


@pytest.mark.parametrize("arch", list(ARCHS))
def test_zero_init_residual(arch):
    m = build_model(arch, width=4, zero_init_residual=True)
    for block in (blk for i in range(1, 5) for blk in m.get_submodule(f"layer{i}")):
        last_bn = block.bn3 if hasattr(block, "bn3") else block.bn2
        assert torch.count_nonzero(last_bn.weight) == 0


@pytest.mark.parametrize("kwargs,match", [
    (dict(arch="resnet101"), "unknown arch 'resnet101'; valid choices: resnet18, resnet34, resnet50"),
    (dict(arch="resnet18", width=0), "width must be a positive int, got 0"),
    (dict(arch="resnet18", num_classes=0), "num_classes must be a positive int"),
])
def test_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_model(**kwargs)
