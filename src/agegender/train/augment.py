"""Batch augmentation on uint8 NHWC crops (all in torch, no per-image Python loop)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from .levers import Lever

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def lose_detail(img: torch.Tensor, size: int) -> torch.Tensor:
    """Float NCHW images shrunk to ``size`` px (bilinear, antialiased) and blown back up: the same
    geometry with the detail of a ``size``-pixel image."""
    full = img.shape[-1]
    small = F.interpolate(img, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return F.interpolate(small, size=(full, full), mode="bilinear", align_corners=False)


def normalize(x: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W), scaled to [0, 1] then standardised; crops with several
    views stacked on their channels (N, H, W, 3 x V) give (N, 3 x V, H, W), each view standardised alike."""
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    views = x.shape[1] // 3
    m = torch.tensor(mean, dtype=x.dtype).repeat(views).view(1, 3 * views, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).repeat(views).view(1, 3 * views, 1, 1)
    return (x - m) / s


def jpeg_roundtrip(x: torch.Tensor, idx: list[int], qualities: list[int]) -> torch.Tensor:
    """Re-encode the crops ``idx`` of a uint8 NHWC batch as JPEG at the given qualities."""
    from PIL import Image

    x = x.clone()
    for i, q in zip(idx, qualities):
        buf = io.BytesIO()
        Image.fromarray(x[i].numpy()).save(buf, "JPEG", quality=int(q))
        buf.seek(0)
        x[i] = torch.from_numpy(np.asarray(Image.open(buf).convert("RGB")).copy())
    return x


def _u(g: torch.Generator, lo: float, hi: float, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=g) * (hi - lo) + lo


def _encoders(x: torch.Tensor, g: torch.Generator, p_degrade: float) -> torch.Tensor:
    """JPEG re-encoding of uint8 crops at quality 20-90, with probability ``p_degrade``."""
    if p_degrade > 0:
        sel = (torch.rand(x.shape[0], generator=g) < p_degrade).nonzero().flatten().tolist()
        if sel:
            x = jpeg_roundtrip(x, sel, torch.randint(20, 91, (len(sel),), generator=g).tolist())
    return x


def _cameras(img: torch.Tensor, g: torch.Generator, p: float) -> torch.Tensor:
    """Down-and-up resampling (to 35-80 % of the size) and sensor noise (at half the probability)."""
    n, size = img.shape[0], img.shape[-1]
    for i in (torch.rand(n, generator=g) < p).nonzero().flatten().tolist():
        s = max(8, int(size * float(_u(g, 0.35, 0.8, 1))))
        img[i : i + 1] = lose_detail(img[i : i + 1], s)
    noisy = torch.rand(n, generator=g) < p / 2
    if noisy.any():
        sigma = _u(g, 0.01, 0.05, n).view(n, 1, 1, 1)
        img = torch.where(noisy.view(n, 1, 1, 1), img + sigma * torch.randn(img.shape, generator=g), img)
    return img


def _geometry(img: torch.Tensor, g: torch.Generator, max_rotate: float, scale: tuple[float, float],
              max_shift: float) -> torch.Tensor:
    """Horizontal flip, rotation, scale and shift in one resampling."""
    n = img.shape[0]
    flip = torch.rand(n, generator=g) < 0.5
    img[flip] = img[flip].flip(3)
    ang = _u(g, -max_rotate, max_rotate, n) * math.pi / 180
    sc = _u(g, *scale, n)
    tx, ty = _u(g, -max_shift, max_shift, n) * 2, _u(g, -max_shift, max_shift, n) * 2
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _colours(img: torch.Tensor, g: torch.Generator, jitter: float, p_gray: float, p_blur: float) -> torch.Tensor:
    """Brightness, contrast and saturation jitter, greyscale, a light blur."""
    n = img.shape[0]
    img = img * _u(g, 1 - jitter, 1 + jitter, n).view(n, 1, 1, 1)
    mean_l = img.mean(dim=(1, 2, 3), keepdim=True)
    img = (img - mean_l) * _u(g, 1 - jitter, 1 + jitter, n).view(n, 1, 1, 1) + mean_l
    gray = (0.299 * img[:, 0:1] + 0.587 * img[:, 1:2] + 0.114 * img[:, 2:3])
    sat = _u(g, 1 - jitter, 1 + jitter, n).view(n, 1, 1, 1)
    sat = torch.where((torch.rand(n, generator=g) < p_gray).view(n, 1, 1, 1), torch.zeros_like(sat), sat)
    img = gray + (img - gray) * sat
    blur = torch.rand(n, generator=g) < p_blur
    if blur.any():
        img[blur] = F.avg_pool2d(F.pad(img[blur], (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return img.clamp_(0, 1)


def _erase(img: torch.Tensor, g: torch.Generator, p_erase: float) -> torch.Tensor:
    """Random erasing: a rectangle of 2-20 % of the crop filled with noise, in normalised units."""
    n, (h, w) = img.shape[0], img.shape[2:]
    for i in (torch.rand(n, generator=g) < p_erase).nonzero().flatten().tolist():
        area = float(_u(g, 0.02, 0.2, 1)) * h * w
        aspect = math.exp(float(_u(g, math.log(0.3), math.log(3.3), 1)))
        eh, ew = min(h, int(round(math.sqrt(area * aspect)))), min(w, int(round(math.sqrt(area / aspect))))
        y0 = int(torch.randint(0, h - eh + 1, (1,), generator=g))
        x0 = int(torch.randint(0, w - ew + 1, (1,), generator=g))
        img[i, :, y0 : y0 + eh, x0 : x0 + ew] = torch.randn(3, eh, ew, generator=g)
    return img


def augment(
    x: torch.Tensor,
    generator: torch.Generator,
    max_rotate: float = 12.0,
    scale: tuple[float, float] = (0.9, 1.1),
    max_shift: float = 0.06,
    jitter: float = 0.3,
    p_gray: float = 0.1,
    p_blur: float = 0.15,
    p_erase: float = 0.25,
    p_degrade: float = 0.0,
    levers: Sequence[Lever] = (),
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
) -> torch.Tensor:
    """Flip, small rotation/scale/shift, colour jitter, grey, blur, random erasing; returns normalised NCHW.

    ``p_degrade`` > 0 also simulates other cameras and encoders, each with that probability: JPEG
    re-encoding (quality 20-90), down-and-up resampling (to 35-80 % of the size) and sensor noise
    (at half that probability), so that the model does not learn one dataset's image statistics.
    ``levers`` (``train.levers``) act at their hooks: ``encode`` after the JPEG, ``framing`` on the geometry's
    ranges, ``image`` after the colours (photo-domain effects, old prints).
    """
    g = generator
    x = _encoders(x, g, p_degrade)
    for lever in levers:
        x = lever.encode(x, g)
    for lever in levers:
        scale, max_shift = lever.framing(scale, max_shift)
    img = x.permute(0, 3, 1, 2).float().div_(255.0)
    if p_degrade > 0:
        img = _cameras(img, g, p_degrade)
    img = _colours(_geometry(img, g, max_rotate, scale, max_shift), g, jitter, p_gray, p_blur)
    for lever in levers:
        img = lever.image(img, g)
    img = (img - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    return _erase(img, g, p_erase).contiguous(memory_format=torch.channels_last)
