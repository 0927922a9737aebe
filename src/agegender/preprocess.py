"""Aligned uint8 crops -> the network's input tensor, as the model card says."""

from __future__ import annotations

import numpy as np

from .card import InputSpec
from .denoise import reduce_noise


def to_input(crops: np.ndarray, spec: InputSpec) -> np.ndarray:
    """(N, H, W, 3) RGB uint8 -> (N, 3, H, W) float32, scaled and standardised. Crops with several views
    stacked on the channel axis, (N, H, W, 3 x V), give (N, 3 x V, H, W), each view standardised alike.
    Where the card names a noise ceiling, crops above it are first smoothed (``denoise.reduce_noise``)."""
    if crops.ndim == 3:
        crops = crops[None]
    n, h, w, c = crops.shape
    if c % 3:
        raise ValueError(f"crops must have 3 channels per view, not {c}")
    if spec.noise_ceiling is not None and crops.dtype == np.uint8:
        crops, _ = reduce_noise(crops, spec.noise_ceiling)
    nchw = crops.transpose(0, 3, 1, 2)  # a view: the layout changes with the conversion below, in one pass
    if spec.color == "BGR":
        nchw = nchw.reshape(n, c // 3, 3, h, w)[:, :, ::-1].reshape(n, c, h, w)
    x = np.ascontiguousarray(nchw, dtype=np.float32)
    # the same float32 operations, in the same order, as (x * scale - mean) / std: the same bits
    x *= np.float32(spec.scale)
    x -= np.tile(np.asarray(spec.mean, np.float32), c // 3)[:, None, None]
    x /= np.tile(np.asarray(spec.std, np.float32), c // 3)[:, None, None]
    return x
