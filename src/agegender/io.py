"""Image loading: paths, bytes, numpy arrays and PIL images to RGB uint8 arrays.

EXIF orientation is honoured; greyscale, RGBA, palette, CMYK and 16-bit images are converted;
a max-pixels guard refuses decompression bombs. Every failure is an :class:`ImageLoadError`
with a one-line message.
"""

from __future__ import annotations

import io as _io
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageLoadError

ImageInput = Union[str, os.PathLike, bytes, bytearray, np.ndarray, Image.Image]

#: Refuse images with more pixels than this (about 16k x 11k). Pillow's own default is 89 M.
MAX_PIXELS = 178_956_970

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB (alpha composited on white)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() if arr.size else 0.0
        scale = 255.0 / (65535.0 if hi > 255 else 255.0)
        arr8 = np.clip(arr * scale, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr8 = ((arr - lo) / (hi - lo or 1.0) * 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return img.convert("RGB")


def _open_pil(source: Union[str, os.PathLike, bytes, bytearray], name: str, max_pixels: int,
              reduce_to: int | Callable[[int], int] | None = None) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Decode ``source`` to an RGB uint8 array; returns it, its scale against the full-size image and the
    full-size image's (width, height), EXIF orientation applied (in place: no copy when there is none).

    ``reduce_to``: JPEGs whose longer side is at least twice this are decoded at a reduced size (Pillow's
    draft mode: 1/2, 1/4 or 1/8 in the DCT, much cheaper than a full decode) with a longer side of at
    least ``reduce_to``; everything else is decoded in full (scale 1.0). A function of the image's longer
    side (read from its header) gives the size for each image.
    """
    try:
        if isinstance(source, (bytes, bytearray)):
            if len(source) == 0:
                raise ImageLoadError(f"{name}: empty data")
            fp = _io.BytesIO(source)
        else:
            try:
                fp = open(source, "rb")  # noqa: SIM115 - closed below
            except FileNotFoundError:
                raise ImageLoadError(f"{name}: no such file") from None
            except IsADirectoryError:
                raise ImageLoadError(f"{name}: is a directory") from None
            if os.fstat(fp.fileno()).st_size == 0:
                fp.close()
                raise ImageLoadError(f"{name}: empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            old = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = max_pixels
            try:
                with Image.open(fp) as img:
                    w, h = img.size
                    if w * h > max_pixels:
                        raise ImageLoadError(
                            f"{name}: image of {w}x{h} pixels exceeds the limit of {max_pixels} pixels"
                        )
                    scale = 1.0
                    side = reduce_to(max(w, h)) if callable(reduce_to) else reduce_to
                    if side and img.format == "JPEG" and max(w, h) >= 2 * side:
                        f = side / max(w, h)
                        img.draft("RGB", (max(1, math.ceil(w * f)), max(1, math.ceil(h * f))))
                        scale = img.size[0] / w
                    before = img.size
                    ImageOps.exif_transpose(img, in_place=True)  # loads the pixels
                    full = (h, w) if img.size != before else (w, h)  # a quarter turn swaps the sides
                    return np.asarray(_to_rgb(img), dtype=np.uint8).copy(), scale, full
            finally:
                Image.MAX_IMAGE_PIXELS = old
                fp.close()
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(f"{name}: image exceeds the limit of {max_pixels} pixels") from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError(f"{name}: not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageLoadError(f"{name}: cannot decode image ({msg})") from exc


def _array_to_rgb(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        alpha = arr[:, :, 3:4].astype(np.float32) / (65535.0 if arr.dtype == np.uint16 else 255.0)
        base = arr[:, :, :3].astype(np.float32)
        white = 65535.0 if arr.dtype == np.uint16 else 255.0
        arr = (base * alpha + white * (1 - alpha)).astype(arr.dtype)
    elif not (arr.ndim == 3 and arr.shape[2] == 3):
        raise ImageLoadError(f"{name}: array of shape {arr.shape} is not an image (H,W), (H,W,3) or (H,W,4)")
    if arr.dtype == np.uint8:
        return np.array(arr, dtype=np.uint8, order="C", copy=True)
    if arr.dtype == np.uint16:
        return (arr.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        hi = 1.0 if float(np.nanmax(arr)) <= 1.0 else 255.0
        return np.clip(np.nan_to_num(arr) / hi * 255.0, 0, 255).round().astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        return np.clip(arr, 0, 255).astype(np.uint8)
    raise ImageLoadError(f"{name}: unsupported array dtype {arr.dtype}")


def load_image(source: ImageInput, *, max_pixels: int = MAX_PIXELS, name: str | None = None) -> np.ndarray:
    """Load ``source`` as an RGB ``uint8`` array of shape (H, W, 3).

    ``source`` may be a path, raw encoded bytes, a numpy array (RGB order) or a PIL image.
    Raises :class:`ImageLoadError` with a one-line message for anything unreadable.
    """
    if name is None:
        name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else type(source).__name__
    if isinstance(source, np.ndarray):
        if source.size == 0:
            raise ImageLoadError(f"{name}: empty array")
        if source.shape[0] * source.shape[1] > max_pixels:
            raise ImageLoadError(f"{name}: image exceeds the limit of {max_pixels} pixels")
        return _array_to_rgb(source, name)
    if isinstance(source, Image.Image):
        w, h = source.size
        if w * h > max_pixels:
            raise ImageLoadError(f"{name}: image of {w}x{h} pixels exceeds the limit of {max_pixels} pixels")
        return np.asarray(_to_rgb(ImageOps.exif_transpose(source)), dtype=np.uint8).copy()
    if isinstance(source, (str, os.PathLike, bytes, bytearray)):
        return _open_pil(source, name, max_pixels)[0]
    raise ImageLoadError(f"{name}: unsupported input type {type(source).__name__}")


def load_image_reduced(source: ImageInput, min_side: int | Callable[[int], int], *, max_pixels: int = MAX_PIXELS,
                       name: str | None = None) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Like :func:`load_image`, but a large JPEG may come back smaller: decoded in Pillow's draft mode
    (1/2, 1/4 or 1/8 of its size, chosen so that its longer side stays at least ``min_side``, or at least
    ``min_side(longer side of the full image)`` for a function).

    Returns the RGB array, its scale against the full-size image (1.0 when decoded in full: other
    formats, smaller JPEGs, arrays and PIL images) and the full-size image's (width, height). For a face
    detector that never looks at more than ``min_side`` pixels anyway; read the full image with
    :func:`load_image` for alignment.
    """
    if name is None:
        name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else type(source).__name__
    if isinstance(source, (str, os.PathLike, bytes, bytearray)):
        return _open_pil(source, name, max_pixels, reduce_to=min_side)
    arr = load_image(source, max_pixels=max_pixels, name=name)
    return arr, 1.0, (arr.shape[1], arr.shape[0])


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS
