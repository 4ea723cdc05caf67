import itertools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from basisconv import BasisConv2d
from basisconv.core.basis import EXECUTION_FORMS, IMPL_CHOICES

torch.manual_seed(0)
SHAPES = [  # (c_in, c_out, k, stride, padding, dilation, bias)
    (8, 16, 3, 1, 1, 1, False),
    (6, 12, 3, 2, 1, 1, True),
    (5, 10, 1, 1, 0, 1, False),
    (4, 9, 3, 1, 2, 2, True),
]


def _conv(c_in, c_out, k, s, p, d, bias):
    return nn.Conv2d(c_in, c_out, k, s, p, d, bias=bias).double()


@pytest.mark.parametrize("shape,init,coeff", list(itertools.product(SHAPES, ["qr", "svd"], ["reduced", "full"])))
def test_full_rank_reproduces_conv(shape, init, coeff):
    conv = _conv(*shape)
    b = BasisConv2d.from_conv(conv, rank=conv.out_channels, coeff=coeff, init=init)
    x = torch.randn(2, shape[0], 11, 11, dtype=torch.float64)
    torch.testing.assert_close(b(x), conv(x), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("shape,init,coeff,ratio", list(itertools.product(SHAPES, ["qr", "svd", "random"],
                                                                           ["reduced", "full"], [0.25, 0.5])))
def test_fold_equals_module(shape, init, coeff, ratio):
    b = BasisConv2d.from_conv(_conv(*shape), ratio=ratio, coeff=coeff, init=init)
    x = torch.randn(3, shape[0], 9, 9, dtype=torch.float64)
    folded = b.to_conv()
    assert isinstance(folded, nn.Conv2d) and folded.weight.shape == (shape[1], shape[0], shape[2], shape[2])
    torch.testing.assert_close(folded(x), b(x), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("shape,ratio", list(itertools.product(SHAPES, [0.25, 0.5, 0.75])))
def test_reduced_and_full_svd_give_same_product(shape, ratio):
    """Both forms of the SVD init represent the same best rank-r approximation W_r = U_r S_r V_r^T."""
    conv = _conv(*shape)
    red = BasisConv2d.from_conv(conv, ratio=ratio, coeff="reduced", init="svd")
    full = BasisConv2d.from_conv(conv, ratio=ratio, coeff="full", init="svd")
    x = torch.randn(2, shape[0], 8, 8, dtype=torch.float64)
    torch.testing.assert_close(red(x), full(x), rtol=1e-8, atol=1e-8)
    w = conv.weight.detach().reshape(conv.out_channels, -1)
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    r = red.rank
    w_r = (u[:, :r] * s[:r]) @ vh[:r]
    torch.testing.assert_close(red.to_conv().weight.reshape_as(w_r), w_r, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("shape,ratio", list(itertools.product(SHAPES, [0.25, 0.5])))
def test_svd_is_optimal_and_qr_uses_real_filters(shape, ratio):
    conv = _conv(*shape)
    w = conv.weight.detach()
    qr = BasisConv2d.from_conv(conv, ratio=ratio, init="qr")
    svd = BasisConv2d.from_conv(conv, ratio=ratio, init="svd")
    err_qr = (qr.to_conv().weight - w).norm()
    err_svd = (svd.to_conv().weight - w).norm()
    assert err_svd <= err_qr + 1e-9  # Eckart-Young: no rank-r matrix does better
    # QR keeps actual filters of the conv as the basis, and they sit at their original output positions
    torch.testing.assert_close(qr.weight, w[qr.basis_idx])
    torch.testing.assert_close(qr.to_conv().weight[qr.basis_idx], w[qr.basis_idx])
    # and the reduced forward passes the basis channels through unchanged
    x = torch.randn(2, shape[0], 7, 7, dtype=torch.float64)
    torch.testing.assert_close(qr(x)[:, qr.basis_idx], conv(x)[:, qr.basis_idx])


def test_qr_recovers_exact_low_rank_conv():
    conv = nn.Conv2d(8, 16, 3, padding=1, bias=False).double()
    with torch.no_grad():  # a conv whose 16 filters span only 4 dimensions
        conv.weight.copy_((torch.randn(16, 4, dtype=torch.float64) @ torch.randn(4, 72, dtype=torch.float64)
                           ).reshape(16, 8, 3, 3))
    for init in ("qr", "svd"):
        b = BasisConv2d.from_conv(conv, rank=4, init=init)
        x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
        torch.testing.assert_close(b(x), conv(x), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("c_in,c_out,k,rank,coeff", [(8, 16, 3, 4, "reduced"), (8, 16, 3, 4, "full"),
                                                      (3, 64, 3, 32, "reduced"), (32, 32, 1, 8, "reduced"),
                                                      (16, 16, 3, 16, "reduced")])
def test_param_formula(c_in, c_out, k, rank, coeff):
    b = BasisConv2d(c_in, c_out, k, rank=rank, coeff=coeff)
    mixed = (c_out - rank) if coeff == "reduced" else c_out
    assert sum(p.numel() for p in b.parameters()) == rank * c_in * k * k + mixed * rank
    assert b.coefficients.shape == (mixed, rank)


@pytest.mark.parametrize("init,coeff,bias", list(itertools.product(["qr", "svd", "random"], ["reduced", "full"],
                                                                   [False, True])))
def test_gradients_reach_every_parameter(init, coeff, bias):
    b = BasisConv2d.from_conv(nn.Conv2d(4, 8, 3, padding=1, bias=bias), ratio=0.5, init=init, coeff=coeff)
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    b(x).square().sum().backward()
    for name, p in list(b.named_parameters()) + [("input", x)]:
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_random_init_keeps_output_scale():
    torch.manual_seed(1)
    conv = nn.Conv2d(64, 64, 3, padding=1, bias=False)
    b = BasisConv2d.from_conv(conv, ratio=0.25, init="random")
    y = b(torch.randn(8, 64, 8, 8))
    basis_std, mixed_std = y[:, b.basis_idx].std(), y[:, b.other_idx].std()
    assert 0.6 < float((mixed_std / basis_std).detach()) < 1.6


def test_attributes_and_repr():
    b = BasisConv2d(8, 16, 3, padding=1, rank=4)
    assert b.rank == 4 and b.coeff == "reduced"
    assert "rank=4" in repr(b) and "coeff='reduced'" in repr(b)


@pytest.mark.parametrize("kwargs,match", [
    (dict(groups=2), "groups=2"),
    (dict(coeff="diag"), "unknown coeff 'diag'.*reduced, full"),
    (dict(rank=0), "rank must be"),
    (dict(rank=17), "rank must be"),
])
def test_constructor_errors(kwargs, match):
    args = dict(rank=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        BasisConv2d(8, 16, 3, **args)


@pytest.mark.parametrize("kwargs,match", [
    (dict(), "exactly one of ratio or rank"),
    (dict(ratio=0.5, rank=2), "exactly one of ratio or rank"),
    (dict(ratio=0.0), r"ratio must be a number in \(0, 1\], got 0.0"),
    (dict(ratio=1.5), r"ratio must be a number in \(0, 1\], got 1.5"),
    (dict(ratio=float("nan")), "ratio must be"),
    (dict(rank=99), r"rank must be an int in \[1, 16\], got 99"),
    (dict(ratio=0.5, init="pca"), "unknown init 'pca'.*qr, svd, random"),
])
def test_from_conv_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BasisConv2d.from_conv(nn.Conv2d(8, 16, 3), **kwargs)


def test_grouped_conv_refused():
    with pytest.raises(ValueError, match="groups=4"):
        BasisConv2d.from_conv(nn.Conv2d(8, 16, 3, groups=4), ratio=0.5)


@pytest.mark.parametrize("ratio,c_out,expected", [(0.5, 64, 32), (0.01, 64, 1), (1.0, 10, 10), (0.25, 10, 2)])
def test_ratio_to_rank(ratio, c_out, expected):
    assert BasisConv2d.from_conv(nn.Conv2d(3, c_out, 3), ratio=ratio).rank == expected


def test_state_dict_roundtrip_keeps_channel_order():
    conv = nn.Conv2d(8, 16, 3, padding=1)
    b = BasisConv2d.from_conv(conv, ratio=0.5, init="qr")
    fresh = BasisConv2d(8, 16, 3, padding=1, bias=True, rank=8)  # identity order before loading
    fresh.load_state_dict(b.state_dict())
    x = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(fresh(x), b(x))


def _folded_reference(layer, x):
    """A Y' written out as one conv with the folded weight A W' (autograd through ``full_coeff``), plus bias: the
    function every execution form must compute, with gradients reaching the same parameters."""
    w = (layer.full_coeff() @ layer.weight.reshape(layer.rank, -1)).reshape(
        layer.out_channels, layer.in_channels, *layer.kernel_size)  # (C_out, C_in, k, k)
    return F.conv2d(x, w, layer.bias, layer.stride, layer.padding, layer.dilation)


def _grads(layer, x, y):
    y.square().sum().backward()
    return {n: p.grad for n, p in layer.named_parameters() if p.numel()} | {"input": x.grad}


@pytest.mark.parametrize("form", list(EXECUTION_FORMS))
@pytest.mark.parametrize("init,ratio,order", list(itertools.product(["qr", "svd", "random"], [0.25, 0.5, 1.0],
                                                                    ["identity", "permuted"])))
def test_execution_forms_match_reference(form, init, ratio, order):
    """Every registered form: same output and gradients as the folded conv, for each init, with the basis channels
    first (identity order) or scattered among the outputs, and at rank == C_out (no combined channels)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 12, 3, padding=1, bias=True).double()
    layer = BasisConv2d.from_conv(conv, ratio=ratio, init=init, impl=form)
    # force the order: the inits alone do not cover both (random is always identity, QR/SVD usually not)
    pos = torch.arange(layer.rank) if order == "identity" else torch.randperm(12)[:layer.rank]
    if order == "permuted" and torch.equal(pos, torch.arange(layer.rank)):
        pos = pos.flip(0)
    layer._set_basis_positions(pos)
    assert layer._order_identity == (order == "identity") and layer.execution_form == form
    x = torch.randn(2, 6, 7, 7, dtype=torch.float64, requires_grad=True)
    y_ref = _folded_reference(layer, x)
    g_ref = _grads(layer, x, y_ref)
    layer.zero_grad(set_to_none=True)
    x.grad = None
    y = layer(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    g = _grads(layer, x, y)
    for n, ref in g_ref.items():  # at full rank the coefficient matrix is empty (skipped: "cat" leaves it None)
        assert g[n] is not None, n
        torch.testing.assert_close(g[n], ref, rtol=1e-9, atol=1e-9, msg=f"{form} {n}")


@pytest.mark.parametrize("form", list(EXECUTION_FORMS))
@pytest.mark.parametrize("init", ["qr", "svd", "random"])
def test_full_coeff_ignores_execution_form(form, init):
    """The full coefficient matrix has one form (a 1x1 conv) whatever ``impl`` says."""
    conv = nn.Conv2d(6, 12, 3, padding=1, bias=True).double()
    layer = BasisConv2d.from_conv(conv, ratio=0.5, init=init, coeff="full", impl=form)
    x = torch.randn(2, 6, 7, 7, dtype=torch.float64)
    torch.testing.assert_close(layer(x), _folded_reference(layer, x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("init,expected", [("qr", "dense_mix"), ("svd", "dense_mix"), ("random", "cat")])
def test_auto_resolution(init, expected):
    """"auto" is a rule over the registry, not an entry: dense_mix when the basis order is not the identity."""
    assert "auto" not in EXECUTION_FORMS and IMPL_CHOICES == ("auto", *EXECUTION_FORMS)
    b = BasisConv2d.from_conv(nn.Conv2d(8, 16, 3, padding=1), ratio=0.5, init=init)
    assert b.impl == "auto" and b.execution_form == expected
    fresh = BasisConv2d(8, 16, 3, padding=1, bias=True, rank=8)  # identity order until a QR state dict loads
    assert fresh.execution_form == "cat"
    fresh.load_state_dict(b.state_dict())
    assert fresh.execution_form == expected
    for form in EXECUTION_FORMS:  # an explicit impl is taken as is, and shown in the repr
        layer = BasisConv2d(8, 16, 3, rank=4, impl=form)
        assert layer.execution_form == form and f"impl={form!r}" in repr(layer)


def test_registered_form_is_dispatched(monkeypatch):
    """A new form is one registry entry: the constructor accepts it and forward calls it (bias added after)."""
    calls = []

    def spy(layer, y):
        calls.append(tuple(y.shape))
        return EXECUTION_FORMS["dense_mix"](layer, y)

    monkeypatch.setitem(EXECUTION_FORMS, "spy", spy)
    conv = nn.Conv2d(4, 8, 3, padding=1, bias=True)
    b = BasisConv2d.from_conv(conv, ratio=0.5, init="qr", impl="spy")
    ref = BasisConv2d.from_conv(conv, ratio=0.5, init="qr", impl="dense_mix")
    x = torch.randn(2, 4, 5, 5)
    assert torch.equal(b(x), ref(x)) and calls == [(2, 4, 5, 5)]  # y: (N, rank, H, W)


def test_auto_keeps_channels_last_for_qr_layers():
    b = BasisConv2d.from_conv(nn.Conv2d(8, 16, 3, padding=1), ratio=0.5, init="qr")
    assert not torch.equal(b.basis_idx, torch.arange(8))  # QR picked a non-leading basis
    b = b.to(memory_format=torch.channels_last)
    y = b(torch.randn(2, 8, 6, 6).contiguous(memory_format=torch.channels_last))
    assert y.is_contiguous(memory_format=torch.channels_last)


def test_unknown_impl():
    with pytest.raises(ValueError, match="unknown impl 'fast'; valid choices: auto, cat, dense_mix"):
        BasisConv2d(4, 8, 3, rank=2, impl="fast")
