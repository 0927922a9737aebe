"""Batch augmentation on uint8 NHWC crops (all in torch, no per-image Python loop)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(x: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W), scaled to [0, 1] then standardised."""
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


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
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
) -> torch.Tensor:
    """Flip, small rotation/scale/shift, colour jitter, grey, blur, random erasing; returns normalised NCHW."""
    n = x.shape[0]
    g = generator

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return torch.rand(*(shape or (n,)), generator=g) * (hi - lo) + lo

    img = x.permute(0, 3, 1, 2).float().div_(255.0)
    flip = torch.rand(n, generator=g) < 0.5
    img[flip] = img[flip].flip(3)
    ang = u(-max_rotate, max_rotate) * math.pi / 180
    sc = u(*scale)
    tx, ty = u(-max_shift, max_shift) * 2, u(-max_shift, max_shift) * 2
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    img = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # colour: brightness, contrast, saturation
    img = img * u(1 - jitter, 1 + jitter).view(n, 1, 1, 1)
    mean_l = img.mean(dim=(1, 2, 3), keepdim=True)
    img = (img - mean_l) * u(1 - jitter, 1 + jitter).view(n, 1, 1, 1) + mean_l
    gray = (0.299 * img[:, 0:1] + 0.587 * img[:, 1:2] + 0.114 * img[:, 2:3])
    sat = u(1 - jitter, 1 + jitter).view(n, 1, 1, 1)
    sat = torch.where((torch.rand(n, generator=g) < p_gray).view(n, 1, 1, 1), torch.zeros_like(sat), sat)
    img = gray + (img - gray) * sat
    blur = torch.rand(n, generator=g) < p_blur
    if blur.any():
        img[blur] = F.avg_pool2d(F.pad(img[blur], (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    img = img.clamp_(0, 1)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    img = (img - m) / s
    # random erasing
    h, w = img.shape[2:]
    erase = (torch.rand(n, generator=g) < p_erase).nonzero().flatten().tolist()
    for i in erase:
        area = float(u(0.02, 0.2, 1)) * h * w
        aspect = math.exp(float(u(math.log(0.3), math.log(3.3), 1)))
        eh, ew = min(h, int(round(math.sqrt(area * aspect)))), min(w, int(round(math.sqrt(area / aspect))))
        y0 = int(torch.randint(0, h - eh + 1, (1,), generator=g))
        x0 = int(torch.randint(0, w - ew + 1, (1,), generator=g))
        img[i, :, y0 : y0 + eh, x0 : x0 + ew] = torch.randn(3, eh, ew, generator=g)
    return img.contiguous(memory_format=torch.channels_last)
