"""Lever ``domain_aug``: what real photos do to a face that UTKFace's web crops rarely show.

Old prints (sepia, fading, low contrast, halftone screens, grain), other cameras (colour casts, low
light, heavy blur or over-sharpening), small faces (detail of a 24-48 px face) and occluders (a scarf, a
hand, a hat: a solid band over part of the face). Each effect hits an image with probability ``p``,
independently; all work on float NCHW batches in [0, 1], in torch, with a seeded generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..augment import jpeg_roundtrip, lose_detail
from .base import Lever, LeverConfig, register

_SEPIA = torch.tensor([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])


def _pick(n: int, p: float, g: torch.Generator) -> torch.Tensor:
    return (torch.rand(n, generator=g) < p).nonzero().flatten()


def _u(lo: float, hi: float, n: int, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g) * (hi - lo) + lo


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a float NCHW batch (reflect padding)."""
    r = max(1, int(math.ceil(2.5 * sigma)))
    x = torch.arange(-r, r + 1, dtype=img.dtype)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    k = k / k.sum()
    c = img.shape[1]
    img = F.pad(img, (r, r, r, r), mode="reflect")
    img = F.conv2d(img, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(img, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _occlude(img: torch.Tensor, i: int, g: torch.Generator) -> None:
    """A solid band of one colour over the lower face, one side, or the forehead."""
    _, _, h, w = img.shape
    kind = int(torch.randint(0, 3, (1,), generator=g))
    colour = torch.rand(3, 1, 1, generator=g)
    if kind == 0:  # scarf / mask / hand over the mouth
        y0 = int(h * float(_u(0.55, 0.75, 1, g)))
        img[i, :, y0:, :] = colour
    elif kind == 1:  # a hand, a shoulder or hair over one side
        x0 = int(w * float(_u(0.6, 0.8, 1, g)))
        if bool(torch.rand(1, generator=g) < 0.5):
            img[i, :, :, x0:] = colour
        else:
            img[i, :, :, : w - x0] = colour
    else:  # hat, headscarf or fringe over the forehead
        y1 = int(h * float(_u(0.12, 0.3, 1, g)))
        img[i, :, :y1, :] = colour


def domain_shift(img: torch.Tensor, g: torch.Generator, p: float) -> torch.Tensor:
    """Apply each photo-domain effect to a random subset of the batch (probability ``p`` each)."""
    n = img.shape[0]
    img = img.clone()
    # old prints: sepia, faded low contrast
    idx = _pick(n, p, g)
    if len(idx):
        sep = torch.einsum("ij,njhw->nihw", _SEPIA, img[idx])
        img[idx] = sep.clamp(0, 1)
    idx = _pick(n, p, g)
    if len(idx):
        m = img[idx].mean(dim=(1, 2, 3), keepdim=True)
        c = _u(0.3, 0.7, len(idx), g).view(-1, 1, 1, 1)
        fade = _u(0.0, 0.25, len(idx), g).view(-1, 1, 1, 1)
        img[idx] = ((img[idx] - m) * c + m) * (1 - fade) + fade
    # other cameras and light: colour cast, low light
    idx = _pick(n, p, g)
    if len(idx):
        gain = _u(0.7, 1.3, 3 * len(idx), g).view(-1, 3, 1, 1)
        off = _u(-0.08, 0.08, 3 * len(idx), g).view(-1, 3, 1, 1)
        img[idx] = img[idx] * gain + off
    idx = _pick(n, p, g)
    if len(idx):
        dark = _u(0.3, 0.6, len(idx), g).view(-1, 1, 1, 1)
        gamma = _u(1.0, 1.8, len(idx), g).view(-1, 1, 1, 1)
        img[idx] = img[idx].clamp(0, 1).pow(gamma) * dark
    # heavy blur or over-sharpening
    for i in _pick(n, p, g).tolist():
        sigma = float(_u(1.0, 3.0, 1, g))
        img[i : i + 1] = gaussian_blur(img[i : i + 1], sigma)
    for i in _pick(n, p, g).tolist():
        amount = float(_u(0.7, 2.5, 1, g))
        soft = gaussian_blur(img[i : i + 1], float(_u(0.8, 2.0, 1, g)))
        img[i : i + 1] = img[i : i + 1] + amount * (img[i : i + 1] - soft)
    # a small face: the detail of a 24-48 px face
    for i in _pick(n, p, g).tolist():
        img[i : i + 1] = lose_detail(img[i : i + 1], int(_u(24, 48, 1, g)))
    # halftone screen and film grain
    idx = _pick(n, p, g)
    if len(idx):
        h, w = img.shape[2:]
        yy, xx = torch.meshgrid(torch.arange(h, dtype=img.dtype), torch.arange(w, dtype=img.dtype), indexing="ij")
        for i in idx.tolist():
            period = float(_u(2.5, 4.5, 1, g))
            ang = float(_u(0, math.pi / 2, 1, g))
            u = xx * math.cos(ang) + yy * math.sin(ang)
            v = -xx * math.sin(ang) + yy * math.cos(ang)
            screen = 0.5 + 0.5 * torch.cos(2 * math.pi * u / period) * torch.cos(2 * math.pi * v / period)
            a = float(_u(0.1, 0.3, 1, g))
            img[i] = img[i] * (1 - a * screen)
    idx = _pick(n, p, g)
    if len(idx):
        sigma = _u(0.03, 0.1, len(idx), g).view(-1, 1, 1, 1)
        mono = (torch.rand(len(idx), generator=g) < 0.5).view(-1, 1, 1, 1)
        shape = img[idx].shape
        noise = torch.randn(shape, generator=g)
        noise = torch.where(mono, noise[:, :1].expand(shape), noise)
        img[idx] = img[idx] + sigma * noise
    # occluders
    for i in _pick(n, p, g).tolist():
        _occlude(img, i, g)
    return img.clamp_(0, 1)


@dataclass
class DomainAugConfig(LeverConfig):
    """``p``: the probability of each photo-domain effect (sepia, fading, colour casts, low light, heavy blur
    or sharpening, small faces, halftone, grain, occluders: :func:`domain_shift`) and of a heavy JPEG
    (quality 8-40); when on, augmentation's scale range also widens to 0.8-1.2 and its shift to 10 %."""


@register
class DomainAug(Lever):
    name = "domain_aug"
    order = 50
    config_class = DomainAugConfig

    def encode(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if self.on:
            sel = (torch.rand(x.shape[0], generator=g) < self.config.p).nonzero().flatten().tolist()
            if sel:
                x = jpeg_roundtrip(x, sel, torch.randint(8, 41, (len(sel),), generator=g).tolist())
        return x

    def framing(self, scale: tuple[float, float], shift: float) -> tuple[tuple[float, float], float]:
        if self.on:
            return (min(scale[0], 0.8), max(scale[1], 1.2)), max(shift, 0.1)
        return scale, shift

    def image(self, img: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return domain_shift(img, g, self.config.p) if self.on else img
