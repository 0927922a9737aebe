"""Lever ``hair_dropout``: bands along a crop's sides greyed out, so that the network also reads faces
whose hair is cut away or covered."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...align import GREY
from .base import Batch, Lever, LeverConfig, register


def hide_borders(crops: torch.Tensor, p: float, generator: torch.Generator,
                 widths: tuple[float, float] = (0.05, 0.15), p_side: float = 0.75) -> torch.Tensor:
    """Hair dropout: with probability ``p`` per crop, grey out bands along its sides.

    Each side of a chosen crop is hidden with probability ``p_side`` (at least one side), to a depth drawn
    from ``widths`` (fractions of the crop). At margin 0 those bands hold most of the hair, ears and
    background, so the network learns to read the face when they are cut away or covered (a tight crop
    of a short-haired woman, a headscarf, a hat) while it still sees them in the other crops.
    ``crops``: uint8 (N, S, S, 3).
    """
    if p <= 0:
        return crops
    n, size = crops.shape[0], crops.shape[1]
    sel = (torch.rand(n, generator=generator) < p).nonzero().flatten().tolist()
    if not sel:
        return crops
    out = crops.clone()
    lo, hi = widths
    for i in sel:
        sides = (torch.rand(4, generator=generator) < p_side).tolist()
        if not any(sides):
            sides[int(torch.randint(0, 4, (1,), generator=generator))] = True
        depth = [max(1, round(size * (lo + (hi - lo) * float(u)))) for u in torch.rand(4, generator=generator)]
        top, bottom, left, right = (d if s else 0 for d, s in zip(depth, sides))
        if top:
            out[i, :top] = GREY
        if bottom:
            out[i, size - bottom :] = GREY
        if left:
            out[i, :, :left] = GREY
        if right:
            out[i, :, size - right :] = GREY
    return out


@dataclass
class HairDropoutConfig(LeverConfig):
    """``p``: the probability that a training crop has bands along its sides (5-15 % deep, where a tight
    crop holds the hair) greyed out (:func:`hide_borders`)."""


@register
class HairDropout(Lever):
    name = "hair_dropout"
    order = 20
    config_class = HairDropoutConfig

    def crops(self, batch: Batch, g: torch.Generator) -> None:
        if self.on:
            batch.crops = hide_borders(batch.crops, self.config.p, g)
