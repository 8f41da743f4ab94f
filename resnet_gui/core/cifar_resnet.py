"""The CIFAR-10 ResNets of the 2015 paper (He et al., "Deep Residual Learning", section 4.2).

A 3x3 convolution of 16 channels, then three stages of ``n`` basic blocks each (16, 32 and 64
channels; the first block of stages 2 and 3 halves the feature map with a stride-2 convolution),
global average pooling and a linear classifier: 6n+2 layers with weights (ResNet-20, -32, -44,
-56, -110, -1202 for n = 3, 5, 7, 9, 18, 200). No max-pool: the input is a 32x32 photo.

Where a block changes the shape, its shortcut is

* option **A** (``shortcut="A"``): the identity, subsampled with stride 2 and zero-padded with the
  extra channels (``planes // 4`` zero channels on each side, as akamaster/pytorch_resnet_cifar10
  does): no parameters, so a ResNet has exactly the parameters of its plain counterpart;
* option **B** (``"B"``): a 1x1 projection convolution with batch norm (``shortcut.0``/``shortcut.1``);
* ``"none"``: no shortcut at all, the paper's *plain* net of the degradation experiment.

Everywhere else the shortcut is the identity. No library ships option A, hence this module.

Module names are fixed (the importer maps checkpoints onto them, the describer reads them):
``conv1, bn1, relu, layer1..layer3, avgpool, fc``; a block has ``conv1, bn1, conv2, bn2``, a
``shortcut`` (except in a plain net) and ``shortcut_kind`` in ``SHORTCUT_KINDS``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from resnet_gui.core.errors import UnknownModelError

ShortcutOption = Literal["A", "B", "none"]
ShortcutKind = Literal["identity", "zero-pad", "projection", "none"]

SHORTCUT_OPTIONS: tuple[ShortcutOption, ...] = ("A", "B", "none")
SHORTCUT_KINDS: tuple[ShortcutKind, ...] = ("identity", "zero-pad", "projection", "none")
#: The depths of the paper's Table 6 (and of akamaster's trained checkpoints).
PAPER_DEPTHS: tuple[int, ...] = (20, 32, 44, 56, 110, 1202)
STAGE_WIDTHS: tuple[int, int, int] = (16, 32, 64)
INPUT_SIZE = 32
#: The CIFAR-10 classes, in the order of the dataset's labels 0..9.
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


class CifarDepthError(UnknownModelError):
    """A depth that is not 6n+2 (ResNet-21): no such CIFAR ResNet."""


def blocks_per_stage(depth: int) -> int:
    """``n`` of a 6n+2-layer CIFAR ResNet, or :class:`CifarDepthError` naming the depths that exist."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise CifarDepthError(depth_error_sentence(depth))
    return (depth - 2) // 6


def depth_error_sentence(depth: object) -> str:
    known = ", ".join(str(d) for d in PAPER_DEPTHS)
    return f"ResNet-{depth} does not exist: CIFAR ResNets have 6n+2 layers ({known})."


class ZeroPadShortcut(nn.Module):
    """Option A: subsample with stride 2 and pad ``planes // 4`` zero channels on each side."""

    def __init__(self, planes: int) -> None:
        super().__init__()
        self.pad = planes // 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad), "constant", 0.0)

    def extra_repr(self) -> str:
        return f"stride=2, zero channels={self.pad} on each side"


class CifarBasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm, and the shortcut added before the last ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: ShortcutOption = "A") -> None:
        super().__init__()
        if shortcut not in SHORTCUT_OPTIONS:
            raise ValueError(f"unknown shortcut option {shortcut!r}; choose one of {SHORTCUT_OPTIONS}")
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        changes_shape = stride != 1 or in_planes != planes
        self.shortcut: nn.Module | None
        self.shortcut_kind: ShortcutKind
        if shortcut == "none":
            self.shortcut, self.shortcut_kind = None, "none"
        elif not changes_shape:
            self.shortcut, self.shortcut_kind = nn.Identity(), "identity"
        elif shortcut == "A":
            if stride != 2 or planes != 2 * in_planes:
                raise ValueError("option A shortcuts double the channels and halve the size")
            self.shortcut, self.shortcut_kind = ZeroPadShortcut(planes), "zero-pad"
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )
            self.shortcut_kind = "projection"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.relu(out)


class CifarResNet(nn.Module):
    """A CIFAR ResNet (or plain net) of ``depth`` = 6n+2 layers; see the module's docstring."""

    def __init__(self, depth: int, shortcut: ShortcutOption = "A", num_classes: int = 10) -> None:
        super().__init__()
        n = blocks_per_stage(depth)
        if shortcut not in SHORTCUT_OPTIONS:
            raise ValueError(f"unknown shortcut option {shortcut!r}; choose one of {SHORTCUT_OPTIONS}")
        self.depth = depth
        self.shortcut_option: ShortcutOption = shortcut
        self.conv1 = nn.Conv2d(3, STAGE_WIDTHS[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(STAGE_WIDTHS[0])
        self.relu = nn.ReLU(inplace=True)
        in_planes = STAGE_WIDTHS[0]
        stages = []
        for index, planes in enumerate(STAGE_WIDTHS):
            blocks = []
            for position in range(n):
                stride = 2 if index > 0 and position == 0 else 1
                blocks.append(CifarBasicBlock(in_planes, planes, stride, shortcut))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(STAGE_WIDTHS[-1], num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):  # He et al. 2015 ("Delving deep"), as the paper says
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def cifar_resnet(depth: int, shortcut: ShortcutOption = "A", num_classes: int = 10) -> CifarResNet:
    """A randomly initialised :class:`CifarResNet` (the registry's builder)."""
    return CifarResNet(depth, shortcut=shortcut, num_classes=num_classes)
