"""The models `topo` trains, in plain PyTorch, under torchvision's parameter and buffer names:
ResNet-18 and ResNet-50 (CIFAR or ImageNet stem), VGG-16-BN and DenseNet-121, each at a width multiplier.
`topo export` writes weights that load into them exactly; the benchmark and the step-level
comparison with PyTorch (bench/) build the same classes."""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


# --------------------------------------------------------------------------------------------
# Models. Layer names follow torchvision's so that the tapped layers of docs/reference.md resolve
# with `get_submodule` under the same dotted names.
# --------------------------------------------------------------------------------------------


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection; a 1x1 projection when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class ResNet18(nn.Module):
    """ResNet-18 with a 3x3 stride-1 stem (`stem="imagenet"`: torchvision's 7x7 stride-2 one); the
    3x3 stride-2 max pool after it is kept. `width`
    scales every stage's channels (rounded, at least 1), as `resnet18 { width: ... }` does in topo.
    Initialised as torchvision and the reference's code do: convs kaiming-normal (fan out), batch
    norms 1 and 0, the classifier at PyTorch's default, then the stem replaced by a fresh conv
    at PyTorch's default."""

    def __init__(self, classes: int, channels: int, width: float = 1.0, stem: str = "cifar") -> None:
        super().__init__()
        if stem not in ("cifar", "imagenet"):
            raise ValueError(f"unknown stem {stem!r}: cifar or imagenet")
        planes = [scaled(p, width) for p in (64, 128, 256, 512)]
        self.conv1 = conv3x3(channels, planes[0])
        self.bn1 = nn.BatchNorm2d(planes[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = planes[0]
        for index, planes_i in enumerate(planes, start=1):
            stride = 1 if index == 1 else 2
            stage = nn.Sequential(BasicBlock(cin, planes_i, stride), BasicBlock(planes_i, planes_i, 1))
            self.add_module(f"layer{index}", stage)
            cin = planes_i
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if stem == "cifar":
            self.conv1 = conv3x3(channels, planes[0])
        else:
            # torchvision's own stem, kaiming-initialised above with every conv.
            self.conv1 = nn.Conv2d(channels, planes[0], 7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class Bottleneck(nn.Module):
    """1x1, 3x3 (carrying the stride) and 1x1 convs, four times wider out, with a residual
    connection; a 1x1 projection when the shape changes (torchvision's v1.5 block)."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != out:
            self.downsample = nn.Sequential(nn.Conv2d(cin, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + shortcut)


class ResNet50(ResNet18):
    """ResNet-50: bottlenecks, 3, 4, 6 and 3 a stage, stemmed as ResNet-18."""

    def __init__(self, classes: int, channels: int, width: float = 1.0, stem: str = "cifar") -> None:
        super().__init__(classes, channels, width, stem)
        planes = [scaled(p, width) for p in (64, 128, 256, 512)]
        cin = planes[0]
        for index, (planes_i, count) in enumerate(zip(planes, (3, 4, 6, 3)), start=1):
            blocks = []
            for b in range(count):
                blocks.append(Bottleneck(cin, planes_i, 2 if index > 1 and b == 0 else 1))
                cin = planes_i * Bottleneck.expansion
            self.add_module(f"layer{index}", nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d) and module is not self.conv1:
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")


# 13 convs of VGG-16 ("D"); 0 marks a 2x2 max pool.
VGG16_PLAN = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0]


def scaled(channels: int, width: float) -> int:
    """`channels * width` rounded half away from zero, at least 1: how a width multiplier
    scales every channel count (and VGG's hidden units, DenseNet's growth rate and stem)."""
    return max(1, math.floor(channels * width + 0.5))


class VGG16BN(nn.Module):
    """VGG-16 with batch norm: 13 convs, adaptive average pool to 7x7, 25088-4096-4096 head;
    `width` scales every conv and the two hidden layers."""

    def __init__(self, classes: int, channels: int, width: float = 1.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = channels
        for planes in VGG16_PLAN:
            if planes == 0:
                layers.append(nn.MaxPool2d(2, stride=2))
            else:
                planes = scaled(planes, width)
                layers += [
                    nn.Conv2d(cin, planes, 3, padding=1),
                    nn.BatchNorm2d(planes),
                    nn.ReLU(inplace=True),
                ]
                cin = planes
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(7)
        hidden = scaled(4096, width)
        self.classifier = nn.Sequential(
            nn.Linear(cin * 7 * 7, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(hidden, classes),
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (bottleneck of bn_size * growth) then BN-ReLU-3x3 conv (growth)."""

    def __init__(self, cin: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(features, 1)
        x = self.conv1(self.relu1(self.norm1(x)))
        return self.conv2(self.relu2(self.norm2(x)))


class DenseBlock(nn.ModuleDict):
    """Each layer sees the concatenation of the block input and every earlier layer's output."""

    def __init__(self, layers: int, cin: int, growth: int, bn_size: int) -> None:
        super().__init__()
        for index in range(layers):
            self.add_module(f"denselayer{index + 1}", DenseLayer(cin + index * growth, growth, bn_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            OrderedDict(
                norm=nn.BatchNorm2d(cin),
                relu=nn.ReLU(inplace=True),
                conv=nn.Conv2d(cin, cout, 1, bias=False),
                pool=nn.AvgPool2d(2, stride=2),
            )
        )


class DenseNet121(nn.Module):
    """DenseNet-121 (growth 32, blocks 6-12-24-16, bn_size 4), 3x3 stride-1 stem (`stem="imagenet"`:
    torchvision's 7x7 stride-2 one), pool0 kept; `scale` multiplies the growth rate and the
    stem's 64 channels."""

    def __init__(self, classes: int, channels: int, scale: float = 1.0, stem: str = "cifar") -> None:
        super().__init__()
        if stem not in ("cifar", "imagenet"):
            raise ValueError(f"unknown stem {stem!r}: cifar or imagenet")
        growth, bn_size, width = scaled(32, scale), 4, scaled(64, scale)
        conv0 = (nn.Conv2d(channels, width, 3, padding=1, bias=False) if stem == "cifar"
                 else nn.Conv2d(channels, width, 7, stride=2, padding=3, bias=False))
        stages: OrderedDict[str, nn.Module] = OrderedDict(
            conv0=conv0,
            norm0=nn.BatchNorm2d(width),
            relu0=nn.ReLU(inplace=True),
            pool0=nn.MaxPool2d(3, stride=2, padding=1),
        )
        blocks = [6, 12, 24, 16]
        for index, layers in enumerate(blocks, start=1):
            stages[f"denseblock{index}"] = DenseBlock(layers, width, growth, bn_size)
            width += layers * growth
            if index != len(blocks):
                stages[f"transition{index}"] = Transition(width, width // 2)
                width //= 2
        stages["norm5"] = nn.BatchNorm2d(width)
        self.features = nn.Sequential(stages)
        self.classifier = nn.Linear(width, classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.features(x), inplace=True)
        x = F.adaptive_avg_pool2d(x, 1)
        return self.classifier(torch.flatten(x, 1))


def init_weights(model: nn.Module) -> None:
    """The usual initialisation of these models; it does not change the timing, only keeps the
    activations in a realistic range."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
            nn.init.zeros_(module.bias)


MODELS = {"resnet18": ResNet18, "resnet50": ResNet50, "vgg16_bn": VGG16BN, "densenet121": DenseNet121}
