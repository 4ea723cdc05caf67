"""CIFAR ResNets (the architectures of the experiments in arXiv 2408.06024) on torchvision's ResNet blocks.

CIFAR variant: a 3x3 stride-1 stem and no max-pool, so 32x32 inputs keep 32x32 maps in ``layer1``; stages of
``width * (1, 2, 4, 8)`` channels. Module names match ``torchvision.models.ResNet`` (``conv1``, ``layer1.0.conv1``,
``layer2.0.downsample.0`` ...), so dotted names in ``params.yaml`` read like torchvision's.

Basis layers enter through surgery (``basisconv.convert``) rather than a ``conv_layer=`` factory because
torchvision's ``BasicBlock`` hard-codes its ``conv3x3``; ``norm_layer`` is injectable as in torchvision.
"""
from __future__ import annotations

from typing import Callable

import torch.nn as nn
from torchvision.models.resnet import BasicBlock, conv1x1

# arch -> blocks per stage
ARCHS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}


class CifarResNet(nn.Module):
    def __init__(self, layers, num_classes: int = 10, width: int = 64,
                 norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d, zero_init_residual: bool = False):
        super().__init__()
        self._norm_layer = norm_layer
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = norm_layer(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(width, layers[0], stride=1)
        self.layer2 = self._make_layer(width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width * 8, num_classes)
        # torchvision's ResNet initialisation
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes, stride), self._norm_layer(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample, norm_layer=self._norm_layer)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes, norm_layer=self._norm_layer) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))  # (N, w, 32, 32)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (N, 8w, 4, 4)
        return self.fc(self.avgpool(x).flatten(1))


def build_model(arch: str, num_classes: int = 10, width: int = 64, **kwargs) -> CifarResNet:
    """A CIFAR ResNet; ``arch`` in ``ARCHS``. ``resnet18`` at width 64 has 11,173,962 parameters."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; valid choices: {', '.join(sorted(ARCHS))}")
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive int, got {width!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    return CifarResNet(ARCHS[arch], num_classes=num_classes, width=width, **kwargs)
