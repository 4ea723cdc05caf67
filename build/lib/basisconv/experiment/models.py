"""CIFAR ResNets (the architectures of the experiments in arXiv 2408.06024) on torchvision's ResNet blocks.

CIFAR variant: a 3x3 stride-1 stem and no max-pool, so 32x32 inputs keep 32x32 maps in ``layer1``; stages of
``width * (1, 2, 4, 8)`` planes (``block.expansion`` times as many output channels: 1 for ``BasicBlock``, 4 for
``Bottleneck``). Module names match ``torchvision.models.ResNet`` (``conv1``, ``layer1.0.conv1``,
``layer2.0.downsample.0`` ...), so dotted names in ``params.yaml`` read like torchvision's.

Basis layers enter through surgery (``basisconv.convert``) rather than a ``conv_layer=`` factory because
torchvision's blocks hard-code their ``conv3x3``/``conv1x1``; ``block`` (``BasicBlock`` or ``Bottleneck``) and
``norm_layer`` are injectable as in torchvision. ``ARCHS`` is the registry of named architectures: a new one is
one entry (a builder ``(num_classes, width, **kwargs) -> nn.Module``) plus its row in tests/test_models.py, which
parametrises over the registry.
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Type, Union

import torch.nn as nn
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1

from basisconv.core.conv_guard import guard_convs

Block = Type[Union[BasicBlock, Bottleneck]]


class CifarResNet(nn.Module):
    """torchvision's ``ResNet(block, layers)`` with the CIFAR stem; stage ``i`` has ``width * 2**i`` planes and
    ``width * 2**i * block.expansion`` output channels (expansion 1 for ``BasicBlock``, 4 for ``Bottleneck``)."""

    def __init__(self, block: Block, layers, num_classes: int = 10, width: int = 64,
                 norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d, zero_init_residual: bool = False):
        super().__init__()
        self._norm_layer = norm_layer
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = norm_layer(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, width, layers[0], stride=1)
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)
        # torchvision's ResNet initialisation
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:  # the last BN of each residual branch: every block starts as the identity
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock):
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        out = planes * block.expansion  # channels a block of this stage emits
        downsample = None
        if stride != 1 or self.inplanes != out:  # the shortcut must match the branch's shape
            downsample = nn.Sequential(conv1x1(self.inplanes, out, stride), self._norm_layer(out))
        layers = [block(self.inplanes, planes, stride, downsample, norm_layer=self._norm_layer)]
        self.inplanes = out
        layers += [block(self.inplanes, planes, norm_layer=self._norm_layer) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))  # (N, w, 32, 32)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (N, 8w * expansion, 4, 4)
        return self.fc(self.avgpool(x).flatten(1))  # (N, num_classes)


INPUT_SHAPE = (3, 32, 32)  # one CIFAR example (C, H, W): what every cost of these models is counted on

# arch -> builder(num_classes, width, **kwargs) -> nn.Module (kwargs: CifarResNet's norm_layer, zero_init_residual)
ARCHS: dict[str, Callable[..., nn.Module]] = {
    "resnet18": partial(CifarResNet, BasicBlock, (2, 2, 2, 2)),
    "resnet34": partial(CifarResNet, BasicBlock, (3, 4, 6, 3)),
    "resnet50": partial(CifarResNet, Bottleneck, (3, 4, 6, 3)),
}


def build_model(arch: str, num_classes: int = 10, width: int = 64, **kwargs) -> nn.Module:
    """A CIFAR ResNet; ``arch`` in ``ARCHS``. ``resnet18`` at width 64 has 11,173,962 parameters."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; valid choices: {', '.join(sorted(ARCHS))}")
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive int, got {width!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    model = ARCHS[arch](num_classes, width, **kwargs)
    guard_convs(model)  # oneDNN #6035: narrow widths give 1x1 stride-2 shortcuts with < 16 input channels
    return model
