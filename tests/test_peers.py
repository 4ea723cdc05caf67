"""Peers of the basis layer at equal parameter budget (basisconv.perf.peers) and the ONNX path (basisconv.perf.export)."""
import pandas as pd
import pytest
import torch
import torch.nn as nn

from basisconv.experiment.models import build_model
from basisconv import convert
from basisconv.core.basis import BasisConv2d
from basisconv.core.counting import count_params
from basisconv.perf.bench import distinct_shapes
from basisconv.perf.peers import PEERS, basis_budget, bench_peers, full_coeff_conv, summary
from basisconv.core.surgery import fold

SHAPES = [(16, 16, 1, 8), (16, 32, 2, 8), (32, 32, 1, 4)]  # (C_in, C_out, stride, H)


@pytest.mark.parametrize("peer", sorted(PEERS))
@pytest.mark.parametrize("c_in,c_out,stride,h", SHAPES)
@pytest.mark.parametrize("ratio", [0.25, 0.5])
def test_peer_keeps_shape_budget_and_gradients(peer, c_in, c_out, stride, h, ratio):
    torch.manual_seed(0)
    conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
    budget = basis_budget(conv, ratio)
    assert budget == count_params(BasisConv2d.from_conv(conv, ratio=ratio))
    m = PEERS[peer](conv, budget)
    x = torch.randn(2, c_in, h, h, requires_grad=True)
    y = m(x)
    assert y.shape == conv(x).shape and torch.isfinite(y).all()
    y.square().sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in m.parameters())
    assert 0.5 * budget <= count_params(m) <= 1.15 * budget, (count_params(m), budget)  # the same budget


def test_full_coeff_is_the_truncated_svd():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 8, 3, padding=1, bias=True)
    full = full_coeff_conv(conv, 8 * (8 * 9 + 8))  # rank 8: exact
    x = torch.randn(2, 8, 5, 5)
    assert torch.allclose(full(x), conv(x), atol=1e-5)
    low = full_coeff_conv(conv, 2 * (8 * 9 + 8))
    assert low[0].out_channels == 2 and not torch.allclose(low(x), conv(x), atol=1e-3)


def test_bench_peers_rows_and_summary():
    torch.manual_seed(0)
    net = build_model("resnet18", width=4)
    shapes = distinct_shapes(net, (3, 32, 32))
    assert len({(r.in_channels, r.out_channels, r.stride, r.input_hw) for r in shapes}) == len(shapes) >= 4
    rows = bench_peers(net, [0.5], input_shape=(3, 32, 32), batch_size=4, min_run_time=0.01, precisions=("fp32",), progress=False)
    df = pd.DataFrame(rows)
    assert set(df.form) == {"dense", "basis", *PEERS} and set(df["pass"]) == {"fwd", "fwd+bwd"}
    assert len(df) == len(shapes) * (2 + len(PEERS)) * 2
    assert (df[df.form == "dense"].measured_speedup == 1).all() and (df.median_ms > 0).all()
    assert (df.theoretical_speedup > 0).all()
    s = pd.DataFrame(summary(rows))
    assert set(s.form) == {"basis", *PEERS} and (s.shapes_x_ratios == len(shapes)).all()


def test_onnx_export_matches_in_onnxruntime(tmp_path):
    pytest.importorskip("onnxruntime")
    from basisconv.perf.export import bench_onnx
    torch.manual_seed(0)
    net = build_model("resnet18", width=4).eval()
    sel = convert(net, ["layer1.0.conv1", "layer3.1.conv2"], ratio=0.5, init="qr").eval()
    rows = bench_onnx({"basis": sel, "folded": fold(sel)}, tmp_path, input_shape=(3, 32, 32), batch_size=3,
                     min_run_time=0.01)
    assert [r["model"] for r in rows] == ["basis", "folded"]
    for r in rows:
        assert r["max_abs_diff"] < 1e-4 and r["onnx_bytes"] > 0 and r["onnxruntime_ms"] > 0
        assert (tmp_path / f"{r['model']}.onnx").is_file()
