import itertools

import pytest
import torch
import torch.nn as nn

from basisconv import BasisConv2d, conv_layers, convert, convertible_names, count_macs, count_params
from basisconv.experiment.models import build_model
from basisconv.core.surgery import fold


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("resnet18", width=8).eval()


def _expected_basis_params(c_in, c_out, k, rank, coeff):
    return rank * c_in * k * k + ((c_out - rank) if coeff == "reduced" else c_out) * rank


@pytest.mark.parametrize("init,coeff", list(itertools.product(["qr", "svd", "random"], ["reduced", "full"])))
def test_convert_all_keeps_shapes_and_input_untouched(model, init, coeff):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    new = convert(model, "all", ratio=0.5, coeff=coeff, init=init)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"input model changed at {k}"
    assert all(isinstance(new.get_submodule(n), BasisConv2d) for n in convertible_names(model))
    x = torch.randn(2, 3, 32, 32)
    assert new(x).shape == model(x).shape == (2, 10)
    assert not any(type(m) is nn.Conv2d for m in new.modules())


def test_untouched_layers_keep_weights(model):
    names = ["layer2.0.conv1", "layer3.1.conv2"]
    new = convert(model, names, ratio=0.25)
    old_sd, new_sd = model.state_dict(), new.state_dict()
    for k, v in old_sd.items():
        if not any(k.startswith(n + ".") for n in names):
            assert torch.equal(new_sd[k], v), k
    for n in names:
        m = new.get_submodule(n)
        assert isinstance(m, BasisConv2d) and m.rank == max(1, round(0.25 * m.out_channels))


def test_full_ratio_qr_is_exact(model):
    new = convert(model, "all", ratio=1.0, init="qr")
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(new(x), model(x), rtol=1e-4, atol=1e-4)


def test_ratio_dict_and_params(model):
    ratios = {"layer1.0.conv1": 0.5, "layer4.1.conv2": 0.25}
    new = convert(model, ratio=ratios)  # layers="all" with a dict means the dict's keys
    saved = 0
    for name, r in ratios.items():
        conv = model.get_submodule(name)
        b = new.get_submodule(name)
        assert b.rank == round(r * conv.out_channels)
        assert count_params(b) == _expected_basis_params(conv.in_channels, conv.out_channels, 3, b.rank, "reduced")
        saved += count_params(conv) - count_params(b)
    assert count_params(model) - count_params(new) == saved


def test_fold_restores_dense_model(model):
    new = convert(model, "all", ratio=0.5, init="svd")
    folded = fold(new)
    assert not any(isinstance(m, BasisConv2d) for m in folded.modules())
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(folded(x), new(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layers,ratio,match", [
    (["layer9.0.conv1"], 0.5, r"unknown layer 'layer9.0.conv1'; valid layer names: conv1, layer1.0.conv1"),
    (["fc"], 0.5, "unknown layer 'fc'"),
    ("layer1.0.bn1", 0.5, "unknown layer 'layer1.0.bn1'"),
    ([], 0.5, r"empty layer selection \[\]; pass 'all' or some of: conv1"),
    ("all", 0.0, r"ratio must be a number in \(0, 1\], got 0.0"),
    ("all", 1.01, r"ratio must be a number in \(0, 1\], got 1.01"),
    ("all", -0.5, r"got -0.5"),
    ("all", {"nope": 0.5}, "unknown layer in ratio dict 'nope'"),
    ("all", {"conv1": 2.0}, r"ratio\['conv1'\] must be a number in \(0, 1\]"),
    (["conv1", "layer1.0.conv1"], {"conv1": 0.5}, r"no entry for selected layers \['layer1.0.conv1'\]"),
    (["conv1", "conv1"], 0.5, "more than once"),
])
def test_convert_errors(model, layers, ratio, match):
    with pytest.raises(ValueError, match=match):
        convert(model, layers, ratio=ratio)


def test_convert_bad_modes(model):
    with pytest.raises(ValueError, match="unknown coeff 'half'"):
        convert(model, coeff="half")
    with pytest.raises(ValueError, match="unknown init 'magic'"):
        convert(model, init="magic")


def test_basis_layer_is_not_convertible_again(model):
    new = convert(model, ["conv1"], ratio=0.5)
    with pytest.raises(ValueError, match="unknown layer 'conv1'"):
        convert(new, ["conv1"], ratio=0.5)


def test_conv_layers_records(model):
    recs = conv_layers(model, (1, 3, 32, 32))
    assert [r.name for r in recs] == [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    stem = recs[0]
    assert (stem.name, stem.in_channels, stem.out_channels, stem.kernel_size, stem.stride) == \
        ("conv1", 3, 8, (3, 3), (1, 1))
    assert stem.macs == 8 * 3 * 9 * 32 * 32 and stem.params == 8 * 3 * 9
    down = next(r for r in recs if r.name == "layer2.0.downsample.0")
    assert down.kernel_size == (1, 1) and down.stride == (2, 2) and down.output_hw == (16, 16)
    # per-layer MACs add up to the model's conv MACs (the rest is the fc layer)
    assert sum(r.macs for r in recs) + 64 * 10 == count_macs(model, (1, 3, 32, 32))
    basis = conv_layers(convert(model, ["layer1.0.conv1"], ratio=0.5), (1, 3, 32, 32))
    b = next(r for r in basis if r.name == "layer1.0.conv1")
    assert b.kind == "basis" and b.rank == 4


@pytest.mark.parametrize("c_in,c_out,k,stride,ratio,coeff,hw", [
    (16, 32, 3, 1, 0.5, "reduced", 8), (16, 32, 3, 2, 0.25, "full", 8), (3, 16, 3, 1, 0.5, "reduced", 16),
    (32, 64, 1, 2, 0.5, "reduced", 8)])
def test_macs_formula_matches_flop_counter(c_in, c_out, k, stride, ratio, coeff, hw):
    conv = nn.Conv2d(c_in, c_out, k, stride, padding=k // 2, bias=False)
    b = BasisConv2d.from_conv(conv, ratio=ratio, coeff=coeff, impl="cat")  # the paper's cost form
    out_hw = (hw + 2 * (k // 2) - k) // stride + 1
    r = b.rank
    mixed = (c_out - r) if coeff == "reduced" else c_out
    assert count_macs(conv, (2, c_in, hw, hw)) == 2 * out_hw ** 2 * c_out * c_in * k * k
    assert count_macs(b, (2, c_in, hw, hw)) == 2 * out_hw ** 2 * (r * c_in * k * k + mixed * r)


def test_count_macs_leaves_bn_stats(model):
    m = build_model("resnet18", width=4).train()
    before = m.bn1.running_mean.clone()
    count_macs(m, (4, 3, 32, 32))
    assert torch.equal(m.bn1.running_mean, before) and m.training


def test_dense_mix_macs():
    conv = nn.Conv2d(16, 32, 3, padding=1, bias=False)
    b = BasisConv2d.from_conv(conv, ratio=0.25, impl="dense_mix")
    assert count_macs(b, (1, 16, 8, 8)) == 64 * (8 * 16 * 9 + 32 * 8)
