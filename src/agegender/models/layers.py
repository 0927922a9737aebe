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


class BorderMask(nn.Module):
    """Hides the outer ``fraction`` of the crop on each side (sets it to 0, the normalised mean colour).

    A face-only network: at margin 0 that border holds most of the hair, ears and background, so the
    network has to read the face itself (short hair, a headscarf or a cut-off head then say nothing).
    The mask is part of the network, so training, validation and the exported graph apply the same one.
    """

    def __init__(self, fraction: float) -> None:
        super().__init__()
        if not 0.0 < fraction < 0.5:
            raise ValueError("the border fraction must lie in (0, 0.5)")
        self.fraction = fraction
        self._cache: dict[tuple[int, int], torch.Tensor] = {}

    def mask(self, h: int, w: int) -> torch.Tensor:
        if (h, w) not in self._cache:
            kh, kw = round(h * self.fraction), round(w * self.fraction)
            m = torch.zeros(1, 1, h, w)
            m[..., kh : h - kh, kw : w - kw] = 1.0
            self._cache[(h, w)] = m
        return self._cache[(h, w)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask(x.shape[2], x.shape[3]).to(dtype=x.dtype, device=x.device)
