"""Grain beyond what a model saw in training: measured on each aligned crop and smoothed away.

A scanned print, film grain or a dark phone photo puts more pixel-scale noise into a face crop than any
training crop had (UTKFace's and AAF's photos are soft). The network then reads the grain as skin texture:
older and less sure of the gender. A card can name a ``noise_ceiling``: the noise level below which most
training crops lie (``noise_ceiling`` below). A crop above it is blurred, with the least Gaussian blur of
``SIGMAS`` that brings it back under the ceiling, before it reaches the network; crops at or below it are
left exactly as they are.

The level is the robust (median absolute deviation) estimate of the standard deviation of the finest
diagonal wavelet band of the crop's luma, over its central part, in 0-255 units: the usual estimate of
additive noise, little moved by the face's own edges.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

#: blur strengths tried in turn (Gaussian sigma, crop pixels); the last is used when none is enough
SIGMAS: tuple[float, ...] = (0.5, 0.7, 1.0, 1.4, 2.0)
#: the fraction of the crop's side left out on each border when measuring (background, padding)
BORDER = 0.1
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def noise_level(crops: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) or (S, S, 3) RGB uint8 -> (N,) noise estimate in 0-255 units."""
    if crops.ndim == 3:
        crops = crops[None]
    if crops.ndim != 4 or crops.shape[-1] != 3:
        raise ValueError(f"crops must be (N, S, S, 3), not {crops.shape}")
    s = crops.shape[1]
    b = int(round(BORDER * s))
    n = (s - 2 * b) // 2 * 2
    g = crops[:, b : b + n, b : b + n].astype(np.float32) @ _LUMA
    hh = (g[:, 0::2, 0::2] - g[:, 0::2, 1::2] - g[:, 1::2, 0::2] + g[:, 1::2, 1::2]) * 0.5
    return np.median(np.abs(hh).reshape(len(g), -1), axis=1) / 0.6745


def _blur(crop: np.ndarray, sigma: float) -> np.ndarray:
    return np.asarray(Image.fromarray(crop).filter(ImageFilter.GaussianBlur(sigma)))


def reduce_noise(crops: np.ndarray, ceiling: float) -> tuple[np.ndarray, np.ndarray]:
    """Crops above ``ceiling`` blurred back under it. Crops with several views stacked on the channel axis
    (N, S, S, 3 x V) are measured and blurred view by view. Returns the crops (the input array itself when
    none is above) and the sigma applied to each crop and view, (N, V) (0: left as it was)."""
    if crops.ndim != 4 or crops.shape[-1] % 3:
        raise ValueError(f"crops must be (N, S, S, 3 x views), not {crops.shape}")
    views = crops.shape[-1] // 3
    sigmas = np.zeros((len(crops), views), np.float32)
    out = crops
    for v in range(views):
        view = crops[..., 3 * v : 3 * v + 3]
        for i in np.flatnonzero(noise_level(view) > ceiling):
            if out is crops:
                out = crops.copy()
            one = np.ascontiguousarray(view[i])
            for sigma in SIGMAS:
                blurred = _blur(one, sigma)
                if noise_level(blurred)[0] <= ceiling:
                    break
            out[i, ..., 3 * v : 3 * v + 3] = blurred
            sigmas[i, v] = sigma
    return out, sigmas


def noise_ceiling(crops: np.ndarray, percentile: float) -> float:
    """The noise level below which ``percentile`` % of ``crops`` (a model's training crops) lie."""
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {percentile}")
    return float(np.percentile(noise_level(crops), percentile))
