"""The oneDNN #6035 guard (basisconv.core.conv_guard): the bug's reproduction through the package's path, the rewritten
form equal to the conv it replaces, and nothing touched where the bug cannot occur."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from basisconv import BasisConv2d, convert, convertible_names
from basisconv.experiment.models import build_model
from basisconv.core.conv_guard import CHANNEL_BLOCK, GuardedConv2d, affected, conv2d, guard_convs

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.guard  # the whole module: run again under ONEDNN_MAX_CPU_ISA=AVX2 (.ci/run)


def test_reproduction_passes_through_the_guard():
    # A subprocess with its own timeout: unguarded, the kernel hangs every thread inside C on AVX2 machines
    # (pytest-timeout cannot interrupt that), and gives wrong weight gradients on others.
    run = subprocess.run([sys.executable, str(ROOT / "tests" / "onednn_6035_repro.py"), "guarded"],
                         cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count(" ok") == 2, run.stdout


@pytest.mark.parametrize("kernel,stride,c_in,expected", [
    (1, 2, 4, True), (1, 2, CHANNEL_BLOCK - 1, True), (1, 2, CHANNEL_BLOCK, False), (1, 1, 4, False),
    (3, 2, 4, False), (1, (1, 2), 4, True)])
def test_affected_shapes(kernel, stride, c_in, expected):
    assert affected(c_in, kernel, stride) is expected


@pytest.mark.parametrize("stride,padding,groups,padding_mode,fmt", [
    (2, 0, 1, "zeros", torch.channels_last), (2, 1, 1, "zeros", torch.channels_last),
    ((2, 3), 0, 1, "zeros", torch.channels_last), (2, 1, 2, "zeros", torch.channels_last),
    (2, 1, 1, "reflect", torch.channels_last), (2, 0, 1, "zeros", torch.contiguous_format)])
def test_guarded_conv_equals_the_conv(stride, padding, groups, padding_mode, fmt):
    """Outputs and all gradients of the guarded form against the same conv in float64 (not oneDNN)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 8, 1, stride=stride, padding=padding, groups=groups, padding_mode=padding_mode)
    ref = nn.Conv2d(4, 8, 1, stride=stride, padding=padding, groups=groups, padding_mode=padding_mode).double()
    ref.load_state_dict(conv.state_dict())
    assert guard_convs(conv) == [""] and type(conv) is GuardedConv2d
    conv = conv.to(memory_format=fmt)
    x = torch.randn(20, 4, 15, 17).contiguous(memory_format=fmt).requires_grad_()
    xd = x.detach().double().requires_grad_()
    out, out_ref = conv(x), ref(xd)
    assert out.shape == out_ref.shape
    torch.testing.assert_close(out.double(), out_ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(out_ref)
    out.backward(g.float())
    out_ref.backward(g)
    torch.testing.assert_close(conv.weight.grad.double(), ref.weight.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(conv.bias.grad.double(), ref.bias.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(x.grad.double(), xd.grad, rtol=1e-5, atol=1e-5)


def test_functional_form_untouched_where_not_affected():
    """Unaffected shapes call F.conv2d with the very same arguments: bit-identical results."""
    torch.manual_seed(0)
    x = torch.randn(8, 32, 16, 16).contiguous(memory_format=torch.channels_last)
    for w, s, p in ((torch.randn(16, 32, 1, 1), 2, 0), (torch.randn(16, 32, 3, 3), 2, 1),
                    (torch.randn(16, 32, 1, 1), 1, 0)):
        assert torch.equal(conv2d(x, w, None, s, p), F.conv2d(x, w, None, s, p))


def test_guard_leaves_wide_models_alone():
    """Width 32 (the published cpu profiles) has no affected conv: no module changes class, state dict equal."""
    torch.manual_seed(0)
    net = build_model("resnet18", width=32)
    assert guard_convs(net) == []
    assert not any(isinstance(m, GuardedConv2d) for m in net.modules())


def test_guard_takes_narrow_shortcuts_and_keeps_state():
    torch.manual_seed(0)
    plain = build_model("resnet18", width=4)
    names = [n for n, m in plain.named_modules() if isinstance(m, GuardedConv2d)]
    # C_in 4 and 8 are below the block; layer4's shortcut has 16 input channels
    assert names == ["layer2.0.downsample.0", "layer3.0.downsample.0"]
    assert guard_convs(plain) == names  # idempotent
    torch.manual_seed(0)
    again = build_model("resnet18", width=4)
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), again.state_dict().values()))
    # surgery still accepts guarded convs, and a BasisConv2d built from one runs its conv through the guard
    assert "layer2.0.downsample.0" in convertible_names(plain)
    conv = convert(plain, ["layer2.0.downsample.0"], ratio=0.5)
    assert isinstance(conv.get_submodule("layer2.0.downsample.0"), BasisConv2d)
