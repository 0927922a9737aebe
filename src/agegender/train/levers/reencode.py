"""Lever ``reencode``: the same photo saved again must give the same answer.

A share of the training crops is passed through what users do to a photo before it reaches us: JPEG at
quality 60-95, WebP, a CMYK JPEG, greyscale, or a rescale by up to +-20 % (down and back up). Works on the
uint8 NHWC crops of the cache, one PIL round trip per picked crop.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from .base import Batch, Lever, LeverConfig, register

KINDS = ("jpeg", "webp", "cmyk", "grey", "rescale")


def _roundtrip(img: Image.Image, kind: str, q: int, scale: float) -> Image.Image:
    buf = io.BytesIO()
    if kind == "jpeg":
        img.save(buf, "JPEG", quality=q)
    elif kind == "webp":
        img.save(buf, "WEBP", quality=q)
    elif kind == "cmyk":
        img.convert("CMYK").save(buf, "JPEG", quality=q)
    elif kind == "grey":
        return img.convert("L").convert("RGB")
    else:
        w, h = img.size
        small = img.resize((max(8, round(w * scale)), max(8, round(h * scale))), Image.BILINEAR)
        return small.resize((w, h), Image.BILINEAR)
    buf.seek(0)
    with Image.open(buf) as out:
        return out.convert("RGB")


def resave(crop: torch.Tensor, kind: str, q: int = 0, scale: float = 1.0) -> torch.Tensor:
    """One uint8 HWC crop saved again as ``kind`` (one of ``KINDS``; ``q``: quality, ``scale``: rescale)."""
    return torch.from_numpy(np.asarray(_roundtrip(Image.fromarray(crop.numpy()), kind, q, scale)).copy())


def reencode(x: torch.Tensor, p: float, g: torch.Generator) -> torch.Tensor:
    """Each crop of a uint8 NHWC batch re-encoded with probability ``p`` (one of ``KINDS`` at random)."""
    if p <= 0:
        return x
    picked = (torch.rand(x.shape[0], generator=g) < p).nonzero().flatten().tolist()
    if not picked:
        return x
    x = x.clone()
    kinds = torch.randint(0, len(KINDS), (len(picked),), generator=g).tolist()
    qualities = torch.randint(60, 96, (len(picked),), generator=g).tolist()
    scales = (torch.rand(len(picked), generator=g) * 0.4 + 0.8).tolist()
    for i, k, q, s in zip(picked, kinds, qualities, scales):
        x[i] = resave(x[i], KINDS[k], q, s)
    return x


def greyscale(x: torch.Tensor, p: float, g: torch.Generator) -> torch.Tensor:
    """Each crop of a uint8 NHWC batch turned grey (PIL's luma, as a greyscale photo decodes) with
    probability ``p``; draws nothing at 0."""
    if p <= 0:
        return x
    picked = (torch.rand(x.shape[0], generator=g) < p).nonzero().flatten()
    if len(picked) == 0:
        return x
    x = x.clone()
    for i in picked.tolist():
        x[i] = resave(x[i], "grey")
    return x


@dataclass
class ReencodeConfig(LeverConfig):
    """``p``: the share of training crops saved again as users do (JPEG 60-95, WebP, CMYK, grey, +-20 %
    rescale), so that re-encoding a photo does not change its answer; ``grey``: a further share turned
    greyscale (the kind whose answers flip most)."""

    grey: float = 0.0


@register
class Reencode(Lever):
    name = "reencode"
    order = 30
    config_class = ReencodeConfig

    def crops(self, batch: Batch, g: torch.Generator) -> None:
        batch.crops = greyscale(reencode(batch.crops, self.config.p, g), self.config.grey, g)
