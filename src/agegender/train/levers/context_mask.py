"""Lever ``context_mask``: context that does not give the source away.

A crop with a margin shows hair, ears and background where the photo has them. UTKFace's photos are
200x200 crops already, so its wide crops end in grey fill a little past the face, while All-Age-Faces'
photos go on. Left alone, a network learns that grey fill means UTKFace (and UTKFace's labels). Here a
share of the training crops is shown only within the photo window of another, tightly cropped, training
photo (grey outside), so grey fill turns up in every source and says nothing about where a face came from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageDraw

from ...align import GREY
from ...errors import DatasetError
from .base import Batch, Lever, LeverConfig, register

if TYPE_CHECKING:
    from ..config import TrainConfig
    from ..dataset import Arrays

log = logging.getLogger(__name__)


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


@dataclass
class ContextMaskConfig(LeverConfig):
    """``p``: the probability that a training crop is shown only within the photo window of a random tightly
    cropped training photo (UTKFace's 200x200 crops), grey outside, so that a wide crop's grey border does
    not mean "UTKFace"; needs ``model.border: grey`` and ``model.margin`` > 0."""


@register
class ContextMask(Lever):
    name = "context_mask"
    order = 10
    config_class = ContextMaskConfig
    needs_windows = True

    def __init__(self, config: LeverConfig) -> None:
        super().__init__(config)
        self.donors: torch.Tensor | None = None

    def check(self, cfg: TrainConfig) -> None:
        if self.on and (cfg.model.border != "grey" or cfg.model.margin <= 0):
            raise DatasetError("context_mask needs border: grey and a margin above 0")

    def prepare(self, cfg: TrainConfig, train: Arrays) -> None:
        """Photo windows of the tightly cropped training photos: the donors."""
        if not self.on:
            return
        tight = is_tight(train.window, cfg.model.input_size)
        if not tight.any():
            raise DatasetError("context_mask: no training photo is cropped tighter than the crop")
        log.info("context mask: %d of %d training crops end in fill", int(tight.sum()), len(train))
        self.donors = train.window[tight]

    def crops(self, batch: Batch, g: torch.Generator) -> None:
        if self.donors is not None and self.on:
            batch.crops = mask_context(batch.crops, self.donors, self.config.p, g)
