"""Stress subsets built from aligned test crops: what photos unlike the training data do to a model.

Selections of real faces (by head turn, from the detector's landmarks) and transformations of the same
crops (a 24 px face, low light, blur, over-sharpening, greyscale, a scanned old print, an occluder over the
mouth and chin), each scored against the original labels. numpy and Pillow only: usable with the inference install.
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


def _per_image(fn: Callable[[Image.Image, float], Image.Image]) -> Callable[[np.ndarray, float], np.ndarray]:
    def apply(crops: np.ndarray, zoom: float) -> np.ndarray:
        return np.stack([np.asarray(fn(Image.fromarray(c), zoom).convert("RGB")) for c in crops])

    return apply


def _small(px: int) -> Callable[[Image.Image, float], Image.Image]:
    def shrink(im: Image.Image, zoom: float) -> Image.Image:
        side = max(2, round(px / zoom))  # the same face size in pixels, whatever the framing shows around it
        return im.resize((side, side), Image.BILINEAR, reducing_gap=None).resize(im.size, Image.BILINEAR)

    return shrink


def _dark(crops: np.ndarray, zoom: float) -> np.ndarray:
    x = crops.astype(np.float32) / 255.0
    return np.clip(255.0 * 0.35 * x**1.5, 0, 255).astype(np.uint8)


def _occluded(crops: np.ndarray, zoom: float) -> np.ndarray:
    """A grey scarf or mask over mouth and chin: below 62 % of the tight crop's height, across its width
    (in a wider view, the same part of the face, and everything below it)."""
    out = crops.copy()
    size = crops.shape[1]
    top = int(size / 2 + (0.62 * size - size / 2) * zoom)
    half = size * zoom / 2
    out[:, top:, max(0, int(size / 2 - half)) : int(np.ceil(size / 2 + half))] = 128
    return out


def _hair_covered(crops: np.ndarray, zoom: float) -> np.ndarray:
    """Hair and ears cut away or covered (a headscarf, a hood, a crop tighter than the head): grey beyond
    the inner 76 % of the tight crop's width, at its sides and above it (in a wider view, the same part of
    the photo and everything beyond it); the chin stays."""
    out = crops.copy()
    size = crops.shape[1]
    inner = (0.5 - 0.12) * size * zoom
    lo, hi = int(round(size / 2 - inner)), int(round(size / 2 + inner))
    out[:, :lo] = 128
    out[:, :, :lo] = 128
    out[:, :, hi:] = 128
    return out


#: sepia toning (rows: output R, G, B from input R, G, B)
_SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], dtype=np.float32)


def _old_print(crops: np.ndarray, zoom: float) -> np.ndarray:
    """A scanned old print: sepia toning, faded contrast (60 %, lifted blacks), a scanner's sharpening and
    film grain (the same grain on every call, so that models are compared on the same pixels)."""
    x = np.clip(crops.astype(np.float32) / 255.0 @ _SEPIA.T, 0.0, 1.0)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    x = ((x - mean) * 0.6 + mean) * 0.85 + 0.15
    sharpen = ImageFilter.UnsharpMask(radius=1.5 * zoom, percent=100, threshold=0)
    x = np.stack([np.asarray(Image.fromarray((255 * c).round().astype(np.uint8)).filter(sharpen)) for c in x]) / 255.0
    grain = np.random.default_rng(0).standard_normal(x.shape[:3] + (1,), dtype=np.float32)
    return np.clip(255.0 * (x + 0.04 * grain), 0, 255).round().astype(np.uint8)


#: name -> fn(crops of one view, zoom): ``zoom`` is the view's scale against the tight crop (1 / (1 + 2 x
#: margin)), so that every view of a face shows the same change to the photo
TRANSFORMS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "small face (24 px)": _per_image(_small(24)),
    "low light": _dark,
    "blurred (sigma 2 px)": _per_image(lambda im, zoom: im.filter(ImageFilter.GaussianBlur(2 * zoom))),
    "over-sharpened": _per_image(
        lambda im, zoom: im.filter(ImageFilter.UnsharpMask(radius=1.5 * zoom, percent=150, threshold=0))),
    "greyscale": _per_image(lambda im, zoom: im.convert("L")),
    "scanned old print": _old_print,
    "occluded (lower face)": _occluded,
    "hair covered (sides and top)": _hair_covered,
}


def transform_views(fn: Callable[[np.ndarray, float], np.ndarray], crops: np.ndarray,
                    margins: tuple[float, ...] = (0.0,)) -> np.ndarray:
    """``fn`` applied to each view of crops that stack several framings on their channels (one margin per
    view, relative to the tight framing at margin 0)."""
    if crops.shape[-1] != 3 * len(margins):
        raise ValueError(f"crops have {crops.shape[-1]} channels for {len(margins)} view(s)")
    views = [fn(np.ascontiguousarray(crops[..., 3 * k : 3 * k + 3]), 1.0 / (1.0 + 2.0 * m))
             for k, m in enumerate(margins)]
    return views[0] if len(views) == 1 else np.concatenate(views, axis=-1)


def stress_sets(crops: np.ndarray, landmarks: np.ndarray | None, margins: tuple[float, ...] = (0.0,)
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Name -> (row indices into ``crops``, the crops to score). Selections by head turn need the
    landmarks (NaN rows, e.g. faces the detector missed, are left out of them). ``margins``: the framing of
    each view stacked on the crops' channels (a model card's ``alignment.framings``)."""
    rows = np.arange(len(crops))
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {"all": (rows, crops)}
    if landmarks is not None:
        yaw = np.abs(yaw_proxy(landmarks))
        for name, sel in (("frontal (|yaw| < 0.1)", yaw < 0.1), ("turned (|yaw| >= 0.25)", yaw >= 0.25)):
            idx = rows[np.nan_to_num(sel, nan=False).astype(bool)]
            out[name] = (idx, crops[idx])
    for name, fn in TRANSFORMS.items():
        out[name] = (rows, transform_views(fn, crops, margins))
    return out
