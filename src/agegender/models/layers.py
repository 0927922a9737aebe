"""Building blocks: conv-BN-activation and the spatial attention block."""

from __future__ import annotations

import torch
from torch import nn


class ConvBNAct(nn.Sequential):
    """Conv2d -> BatchNorm -> ReLU6 (module indices match torchvision's Conv2dNormActivation)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class SpatialAttention(nn.Module):
    """One spatial attention map per image, used for attention-weighted pooling.

    ``a = sigmoid(conv1x1(relu(bn(conv1x1(x)))))`` in [0, 1] of shape (N, 1, H, W); the pooled
    feature is ``sum(a * x) / sum(a)`` over positions. The map is returned for visualisation.
    """

    def __init__(self, channels: int, hidden: int | None = None, **kwargs: object) -> None:
        super().__init__()
        hidden = hidden or max(channels // 8, 16)
        self.score = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = torch.sigmoid(self.score(x))
        pooled = (x * a).sum(dim=(2, 3)) / (a.sum(dim=(2, 3)) + 1e-6)
        return pooled, a


class AvgPool(nn.Module):
    """Global average pooling with the same (pooled, map) interface; the map is uniform."""

    def __init__(self, channels: int, **kwargs: object) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, _, h, w = x.shape
        return x.mean(dim=(2, 3)), torch.ones(n, 1, h, w, dtype=x.dtype, device=x.device)
