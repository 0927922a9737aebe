"""Context that does not give the source away.

A crop with a margin shows hair, ears and background where the photo has them. UTKFace's photos are
200x200 crops already, so its wide crops end in grey fill a little past the face, while All-Age-Faces'
photos go on. Left alone, a network learns that grey fill means UTKFace (and UTKFace's labels). Here a
share of the training crops is shown only within the photo window of another, tightly cropped, training
photo (grey outside), so grey fill turns up in every source and says nothing about where a face came from.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..align import GREY


def is_tight(windows: torch.Tensor, size: int, slack: float = 1.0) -> torch.Tensor:
    """(N,) bool: the photo window leaves part of the crop uncovered (a crop ends in border fill)."""
    w = windows.numpy().astype(np.float64)
    ok = ~np.isnan(w).any(axis=(1, 2))
    out = np.zeros(len(w), dtype=bool)
    corners = np.array([[0, 0], [size, 0], [size, size], [0, size]], dtype=np.float64)
    for i in np.flatnonzero(ok):
        out[i] = not all(_inside(w[i], c, slack) for c in corners)
    return torch.from_numpy(out)


def _inside(quad: np.ndarray, point: np.ndarray, slack: float) -> bool:
    """Whether ``point`` lies inside the convex quadrilateral ``quad`` (either winding), within ``slack`` px."""
    signs = []
    for k in range(4):
        a, b = quad[k], quad[(k + 1) % 4]
        edge = b - a
        cross = edge[0] * (point[1] - a[1]) - edge[1] * (point[0] - a[0])
        signs.append(cross / max(np.hypot(*edge), 1e-9))
    signs_arr = np.array(signs)
    return bool((signs_arr >= -slack).all() or (signs_arr <= slack).all())


def window_mask(quad: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bool: the pixels inside the photo window ``quad`` (4, 2)."""
    img = Image.new("L", (size, size), 0)
    ImageDraw.Draw(img).polygon([tuple(map(float, p)) for p in quad], fill=1)
    return np.asarray(img, dtype=bool)


def mask_context(
    crops: torch.Tensor, donors: torch.Tensor, p: float, generator: torch.Generator
) -> torch.Tensor:
    """Grey out, with probability ``p`` per crop, what lies outside a random donor's photo window.

    ``crops``: uint8 (N, S, S, 3); ``donors``: (M, 4, 2) windows of tightly cropped training photos.
    A crop that already ends in fill keeps it (the result is the intersection of the two windows).
    """
    if p <= 0 or len(donors) == 0:
        return crops
    n, size = crops.shape[0], crops.shape[1]
    sel = (torch.rand(n, generator=generator) < p).nonzero().flatten().tolist()
    if not sel:
        return crops
    pick = torch.randint(0, len(donors), (len(sel),), generator=generator).tolist()
    out = crops.clone()
    for i, j in zip(sel, pick):
        keep = torch.from_numpy(window_mask(donors[j].numpy(), size))
        out[i][~keep] = GREY
    return out


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
