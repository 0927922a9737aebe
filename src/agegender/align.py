"""Five-point similarity alignment to a canonical template (used by inference *and* training crops)."""

from __future__ import annotations

import numpy as np
from PIL import Image

#: Canonical 5-point template, normalised to [0, 1] of the crop: left eye, right eye, nose tip, left
#: mouth corner, right mouth corner (as seen in the image). It is the symmetrised median of RetinaFace
#: landmarks on 1,000 UTKFace crops, so that at margin 0 a training crop stays inside its 200x200
#: source image (no invented borders) and a photo's face is framed the same way: brow to chin.
TEMPLATE = np.array(
    [
        [0.2990, 0.2920],
        [0.7010, 0.2920],
        [0.5000, 0.5330],
        [0.3290, 0.6860],
        [0.6710, 0.6860],
    ],
    dtype=np.float64,
)


def template_points(size: int, margin: float, template: np.ndarray = TEMPLATE) -> np.ndarray:
    """Template landmarks in pixels for a ``size`` x ``size`` crop.

    ``margin`` is the extra border, as a fraction of the crop, added on each side: 0 is the canonical
    framing, 0.2 shows 40 % more context around it, a negative margin zooms in.
    """
    if size <= 0 or margin <= -0.5:
        raise ValueError("size must be positive and margin greater than -0.5")
    s = 1.0 / (1.0 + 2.0 * margin)
    return ((np.asarray(template, dtype=np.float64) - 0.5) * s + 0.5) * size


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation) mapping src -> dst.

    Umeyama's method; returns a 2x3 matrix ``M`` with ``dst ~= M @ [x, y, 1]``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError("src and dst must be matching (N, 2) arrays with N >= 2")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = (s0**2).sum() / len(src)
    if var_s < 1e-12:
        raise ValueError("degenerate landmarks: all points coincide")
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    r = u @ np.diag(d) @ vt
    scale = (sig * d).sum() / var_s
    t = mu_d - scale * r @ mu_s
    return np.hstack([scale * r, t[:, None]])


#: How a crop is filled where it reaches past the image: "edge" repeats the border pixels; "grey" paints
#: mid-grey (128), so that a wide crop of a tightly cropped photo shows plainly where the photo ends.
BORDERS = ("edge", "grey")
GREY = 128


#: A face shrunk this many times or more is first averaged over blocks of photo pixels (see
#: :func:`warp_affine`); the training crops are shrunk less (tight: under 2.8 times, the 0.15-margin wide
#: view: under 3 times for 99.5 % of them), so they are cropped as before.
BLOCK_SHRINK = 3.0


def _padded(part: np.ndarray, top: int, bottom: int, left: int, right: int, border: str) -> np.ndarray:
    """``part`` (H, W, C) in a new contiguous array with that many pixels more on each side: its edge pixels
    repeated (``border="edge"``, as ``np.pad(mode="edge")``) or mid-grey; a plain copy when nothing is added."""
    h, w = part.shape[:2]
    if border == "edge":
        out = np.empty((h + top + bottom, w + left + right) + part.shape[2:], part.dtype)
    else:
        out = np.full((h + top + bottom, w + left + right) + part.shape[2:], GREY, part.dtype)
    out[top : top + h, left : left + w] = part
    if border == "edge":
        out[top : top + h, :left] = part[:, :1]
        out[top : top + h, left + w :] = part[:, w - 1 :]
        out[:top] = out[top : top + 1]
        out[top + h :] = out[top + h - 1 : top + h]
    return out


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: int, border: str = "edge",
                antialias: bool = True) -> np.ndarray:
    """Warp an RGB uint8 image with a 2x3 forward matrix into a ``size`` x ``size`` crop (bilinear).

    Only the source region under the crop is touched; where the crop reaches past the image border,
    its edge pixels are repeated (``border="edge"``: no black bars, no mirrored second face) or it is
    painted mid-grey (``border="grey"``).

    Bilinear sampling reads only the four photo pixels nearest each crop pixel, so a large face shrunk
    many times over keeps its finest detail (grain, sensor noise, pores, scan texture) at full strength
    and aliased: the crop looks sharper and grainier than the photo. With ``antialias``, a face shrunk
    ``s >= 3`` times (:data:`BLOCK_SHRINK`) is first averaged over ``k`` x ``k`` blocks, ``k = floor(s /
    1.5)``, so that the bilinear step shrinks it 1.5 to 3 times, as it does the training crops; crops
    shrunk less are unchanged.
    """
    if border not in BORDERS:
        raise ValueError(f"border must be one of {BORDERS}, not {border!r}")
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(full)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
    src = corners @ inv[:2].T
    x0, y0 = np.floor(src.min(0)).astype(int) - 2
    x1, y1 = np.ceil(src.max(0)).astype(int) + 2
    h, w = image.shape[:2]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if cx1 <= cx0 or cy1 <= cy0:  # crop entirely outside the image
        region = np.zeros((y1 - y0, x1 - x0, 3), dtype=np.uint8)
    else:
        region = _padded(image[cy0:cy1, cx0:cx1], cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1, border)
    shift = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]])
    local_inv = (np.linalg.inv(shift) @ inv)[:2]
    pil = Image.fromarray(np.ascontiguousarray(region))
    shrink = 1.0 / np.sqrt(abs(np.linalg.det(matrix[:, :2])))
    if antialias and shrink >= BLOCK_SHRINK:
        k = int(shrink / (BLOCK_SHRINK / 2))
        pil = pil.reduce(k)  # block means; photo pixel edge x becomes x / k
        local_inv = local_inv / k
    out = pil.transform(
        (size, size), Image.AFFINE, data=tuple(local_inv.ravel()), resample=Image.BILINEAR
    )
    return np.asarray(out, dtype=np.uint8)


def align_face(
    image: np.ndarray,
    landmarks: np.ndarray,
    size: int = 112,
    margin: float = 0.0,
    template: np.ndarray = TEMPLATE,
    border: str = "edge",
    antialias: bool = True,
) -> np.ndarray:
    """Crop one face: similarity-warp ``landmarks`` (5, 2) onto the template; returns (size, size, 3)."""
    m = estimate_similarity(landmarks, template_points(size, margin, template))
    return warp_affine(image, m, size, border, antialias)


def crop_shrink(
    landmarks: np.ndarray,
    size: int,
    framings: tuple[tuple[float, str], ...],
    template: np.ndarray = TEMPLATE,
) -> float:
    """How many times :func:`align_views` shrinks the face (photo pixels per crop pixel), the least over the
    ``framings`` (the tightest one); ``inf`` for landmarks that give no transform. The scale of
    :func:`estimate_similarity` in closed form (for 2-D points, Umeyama's singular values sum to
    ``sqrt((c00 + c11)^2 + (c10 - c01)^2)`` of the covariance, reflection or not): no SVD."""
    src = np.asarray(landmarks, dtype=np.float64)
    s0 = src - src.mean(0)
    var_s = float((s0**2).sum())
    if not np.isfinite(var_s) or var_s < 1e-12:
        return float("inf")
    out = float("inf")
    for margin, _ in framings:
        dst = template_points(size, margin, template)
        c = (dst - dst.mean(0)).T @ s0
        scale = float(np.hypot(c[0, 0] + c[1, 1], c[1, 0] - c[0, 1])) / var_s  # crop pixels per photo pixel
        out = min(out, 1.0 / scale if scale > 0 else float("inf"))
    return out


def visible_window(
    landmarks: np.ndarray,
    width: int,
    height: int,
    size: int = 112,
    margin: float = 0.0,
    template: np.ndarray = TEMPLATE,
) -> np.ndarray:
    """Where a ``width`` x ``height`` photo lies in the face's crop: its four corners (4, 2) in crop
    pixels (clockwise from top left). Outside that quadrilateral the crop is border fill."""
    m = estimate_similarity(landmarks, template_points(size, margin, template))
    corners = np.array([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]], dtype=np.float64)
    return corners @ m.T


def center_crop(
    image: np.ndarray, size: int = 112, margin: float = 0.0, fill: float = 1.0, border: str = "edge"
) -> np.ndarray:
    """Fallback when no face is found in a face crop: assume the crop is framed like the template.

    Maps the image centre to the crop centre, scaling the shorter side to ``fill`` of the crop;
    used only for inputs known to be single-face crops.
    """
    h, w = image.shape[:2]
    if margin <= -0.5:
        raise ValueError("margin must be greater than -0.5")
    scale = size / (1.0 + 2.0 * margin) / (fill * min(h, w))
    c = size / 2.0
    m = np.array([[scale, 0.0, c - scale * w / 2.0], [0.0, scale, c - scale * h / 2.0]])
    return warp_affine(image, m, size, border)


def _stack(crops: list[np.ndarray]) -> np.ndarray:
    return crops[0] if len(crops) == 1 else np.concatenate(crops, axis=2)


def align_views(
    image: np.ndarray,
    landmarks: np.ndarray,
    size: int,
    framings: tuple[tuple[float, str], ...],
    template: np.ndarray = TEMPLATE,
    antialias: bool = True,
) -> np.ndarray:
    """One crop of the face per (margin, border) framing, stacked on the channel axis: (size, size, 3 x
    views). With one framing this is :func:`align_face`."""
    return _stack([align_face(image, landmarks, size, m, template, b, antialias) for m, b in framings])


def center_crop_views(image: np.ndarray, size: int, framings: tuple[tuple[float, str], ...]) -> np.ndarray:
    """:func:`center_crop` for every (margin, border) framing, stacked on the channel axis."""
    return _stack([center_crop(image, size, m, border=b) for m, b in framings])
