import pytest
import torch

from basisconv import build_model, count_params


@pytest.mark.parametrize("arch,width,expected", [("resnet18", 64, 11_173_962), ("resnet34", 64, 21_282_122)])
def test_param_counts(arch, width, expected):
    assert count_params(build_model(arch, width=width)) == expected


@pytest.mark.parametrize("arch", ["resnet18", "resnet34"])
@pytest.mark.parametrize("width,num_classes", [(4, 10), (8, 100)])
def test_forward_shapes_and_widths(arch, width, num_classes):
    m = build_model(arch, num_classes=num_classes, width=width)
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, num_classes)
    assert [m.get_submodule(f"layer{i}")[0].conv1.out_channels for i in range(1, 5)] == \
        [width, 2 * width, 4 * width, 8 * width]
    assert m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1)  # CIFAR stem, no max-pool
    assert not hasattr(m, "maxpool")


@pytest.mark.parametrize("kwargs,match", [
    (dict(arch="resnet50"), "unknown arch 'resnet50'; valid choices: resnet18, resnet34"),
    (dict(arch="resnet18", width=0), "width must be a positive int, got 0"),
    (dict(arch="resnet18", num_classes=0), "num_classes must be a positive int"),
])
def test_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_model(**kwargs)
