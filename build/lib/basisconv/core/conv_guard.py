"""A guard around oneDNN issue #6035: a 1x1 stride-2 conv's weight gradient on CPU in channels_last.

Not part of the method of arXiv 2408.06024; it keeps its layers (and plain ``nn.Conv2d``) correct on every x86 CPU.

oneDNN's 1x1 convolution, ``backward_weights``, with a stride > 1 copies the strided input into a dense "rtus"
(reduce-to-unit-stride) workspace, and writes past that workspace when the input has fewer channels than the
kernel's channel block (``nhwc``, ``IC < ic_block``): https://github.com/uxlfoundation/oneDNN/issues/6035. The block
is 8 channels in the AVX2 kernel and 16 in the AVX-512 one; what happens depends on the machine and the thread
count: every thread spins forever, a segfault, or, silently, a weight gradient that is wrong in every element.
PyTorch takes oneDNN's ``nhwc`` path when the input or the weight is channels_last. The contiguous (``nchw``) path,
the same conv at stride 1, and ``IC >= ic_block`` are all unaffected.

The guard computes an affected conv in a form that is mathematically the same and never reaches that kernel::

    conv1x1(x, W, stride=s, padding=p)  ==  conv1x1(pad(x, p)[:, :, ::s, ::s], W, stride=1, padding=0)

(a 1x1 kernel reads exactly one input pixel per output pixel, the one at ``s * i``, so subsampling first and
then convolving at unit stride reads the same pixels with the same weights; the slice's backward scatters the
input gradient back into place). It applies on CPU to 1x1 convs with a stride > 1 and fewer than ``CHANNEL_BLOCK``
input channels per group, the larger of the two blocks, so one rule covers AVX2 and AVX-512 machines, in any
memory format. Everything else runs ``F.conv2d`` exactly as before.

- ``conv2d``: ``F.conv2d`` with the guard (``BasisConv2d`` runs its basis convolution through it);
- ``GuardedConv2d``: an ``nn.Conv2d`` subclass with the same parameters and state dict whose forward uses it;
- ``guard_convs(model)``: turns every affected ``nn.Conv2d`` of a model into a ``GuardedConv2d`` in place (the
  trainer, the sensitivity sweep, the estimate, the benchmarks and gpu-check call it on every model they run).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# oneDNN's 1x1 kernels block input channels by 8 (AVX2) or 16 (AVX-512); below the block the rtus copy overflows.
CHANNEL_BLOCK = 16


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def affected(in_channels_per_group: int, kernel_size, stride) -> bool:
    """Whether a conv of this shape can reach the kernel of oneDNN #6035 (on CPU; see the module docstring)."""
    return _pair(kernel_size) == (1, 1) and _pair(stride) != (1, 1) and in_channels_per_group < CHANNEL_BLOCK


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> torch.Tensor:
    """``F.conv2d``, except that an affected 1x1 conv on CPU subsamples first and convolves at stride 1."""
    if x.device.type != "cpu" or not affected(weight.shape[1], weight.shape[2:], stride):
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    if isinstance(padding, str):  # "valid" is the only string padding allowed with a stride > 1
        padding = 0
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    if (ph, pw) != (0, 0):
        x = F.pad(x, (pw, pw, ph, ph))  # zero padding, as F.conv2d's own
    # (N, C_in, H, W) -> (N, C_in, ceil(H/s), ceil(W/s)): the pixels a strided 1x1 kernel reads; dilation is moot
    return F.conv2d(x[:, :, ::sh, ::sw], weight, bias, 1, 0, 1, groups)


class GuardedConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` whose forward goes through ``conv2d`` (same parameters, buffers and state dict keys)."""

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
        if self.padding_mode != "zeros":  # as nn.Conv2d: pad by the mode, then convolve without padding
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv2d(input, weight, bias, self.stride, 0, self.dilation, self.groups)
        return conv2d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)


def guard_convs(model: nn.Module) -> list[str]:
    """Make every affected plain ``nn.Conv2d`` of ``model`` a ``GuardedConv2d``, in place; their dotted names.

    The class is swapped on the instance, so parameters (and an optimiser holding them), hooks and the state dict
    stay as they are; a model without an affected conv is not touched at all. Idempotent.
    """
    names = []
    for name, m in model.named_modules():
        if type(m) is nn.Conv2d and affected(m.in_channels // m.groups, m.kernel_size, m.stride):
            m.__class__ = GuardedConv2d
            names.append(name)
        elif type(m) is GuardedConv2d:
            names.append(name)
    return names
