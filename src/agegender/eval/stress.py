"""Stress subsets built from aligned test crops: what photos unlike the training data do to a model.

Selections of real faces (by head turn, from the detector's landmarks) and transformations of the same
crops (a 24 px face, low light, blur, greyscale, an occluder over the mouth and chin), each scored against
the original labels. numpy and Pillow only: usable with the inference install.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter


def yaw_proxy(landmarks: np.ndarray) -> np.ndarray:
    """Head turn from 5 landmarks (eyes, nose, mouth corners), per face: the nose tip's horizontal offset
    from the eyes' midpoint, in inter-ocular distances (0 frontal; about 0.5 at a three-quarter view)."""
    eyes = (landmarks[:, 0] + landmarks[:, 1]) / 2
    iod = np.linalg.norm(landmarks[:, 1] - landmarks[:, 0], axis=1)
    axis = (landmarks[:, 1] - landmarks[:, 0]) / np.maximum(iod, 1e-6)[:, None]
    offset = ((landmarks[:, 2] - eyes) * axis).sum(1)
    return np.where(iod > 1e-6, offset / np.maximum(iod, 1e-6), np.nan)


def _per_image(fn: Callable[[Image.Image], Image.Image]) -> Callable[[np.ndarray], np.ndarray]:
    def apply(crops: np.ndarray) -> np.ndarray:
        return np.stack([np.asarray(fn(Image.fromarray(c)).convert("RGB")) for c in crops])

    return apply


def _small(px: int) -> Callable[[Image.Image], Image.Image]:
    return lambda im: im.resize((px, px), Image.BILINEAR, reducing_gap=None).resize(im.size, Image.BILINEAR)


def _dark(crops: np.ndarray) -> np.ndarray:
    x = crops.astype(np.float32) / 255.0
    return np.clip(255.0 * 0.35 * x**1.5, 0, 255).astype(np.uint8)


def _occluded(crops: np.ndarray) -> np.ndarray:
    out = crops.copy()
    out[:, int(crops.shape[1] * 0.62) :] = 128  # a grey scarf or mask over mouth and chin
    return out


TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "small face (24 px)": _per_image(_small(24)),
    "low light": _dark,
    "blurred (sigma 2 px)": _per_image(lambda im: im.filter(ImageFilter.GaussianBlur(2))),
    "greyscale": _per_image(lambda im: im.convert("L")),
    "occluded (lower face)": _occluded,
}


def stress_sets(crops: np.ndarray, landmarks: np.ndarray | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Name -> (row indices into ``crops``, the crops to score). Selections by head turn need the
    landmarks (NaN rows, e.g. faces the detector missed, are left out of them)."""
    rows = np.arange(len(crops))
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {"all": (rows, crops)}
    if landmarks is not None:
        yaw = np.abs(yaw_proxy(landmarks))
        for name, sel in (("frontal (|yaw| < 0.1)", yaw < 0.1), ("turned (|yaw| >= 0.25)", yaw >= 0.25)):
            idx = rows[np.nan_to_num(sel, nan=False).astype(bool)]
            out[name] = (idx, crops[idx])
    for name, fn in TRANSFORMS.items():
        out[name] = (rows, fn(crops))
    return out
