"""Lever ``old_print``: scanned old prints, all their effects at once."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Lever, LeverConfig, register
from .domain_aug import _SEPIA, _pick, _u, gaussian_blur


def old_print(img: torch.Tensor, g: torch.Generator, p: float) -> torch.Tensor:
    """Turn a random subset of the batch (probability ``p``) into scanned old prints, all effects at once as
    a scan shows them: sepia or grey toning (or the colours kept, faded), faded contrast with lifted blacks,
    a scanner's sharpening (half of them) and film grain (most of them). The age label stays: a print
    does not make a face older, which models trained on web photos learn (issue 12: scans came out 4-7
    years too old)."""
    idx = _pick(img.shape[0], p, g)
    if not len(idx):
        return img
    img = img.clone()
    for i in idx.tolist():
        x = img[i : i + 1]
        tone = float(torch.rand(1, generator=g))
        if tone < 0.55:
            x = torch.einsum("ij,njhw->nihw", _SEPIA, x).clamp(0, 1)
        elif tone < 0.85:
            x = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:]).expand(-1, 3, -1, -1)
        m = x.mean()
        lift = float(_u(0.03, 0.2, 1, g))
        x = ((x - m) * float(_u(0.45, 0.85, 1, g)) + m) * (1 - lift) + lift
        if bool(torch.rand(1, generator=g) < 0.5):
            x = x + float(_u(0.5, 2.0, 1, g)) * (x - gaussian_blur(x, float(_u(0.8, 2.0, 1, g))))
        if bool(torch.rand(1, generator=g) < 0.8):
            x = x + float(_u(0.01, 0.06, 1, g)) * torch.randn(x[:, :1].shape, generator=g)
        img[i : i + 1] = x.clamp(0, 1)
    return img


@dataclass
class OldPrintConfig(LeverConfig):
    """``p``: the share of training crops turned into scanned old prints (toning, fading, sharpening, grain
    at once: :func:`old_print`)."""


@register
class OldPrint(Lever):
    name = "old_print"
    order = 60
    config_class = OldPrintConfig

    def image(self, img: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return old_print(img, g, self.config.p) if self.on else img
