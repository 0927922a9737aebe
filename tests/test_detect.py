"""RetinaFace on real photos: one face, no face, a tight crop, several faces, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from agegender.detect import Detector, RetinaFaceDetector
from agegender.types import Detection
from conftest import ASTRONAUT_FACE_BOX


@pytest.fixture(scope="module")
def detector() -> RetinaFaceDetector:
    return RetinaFaceDetector(threads=1)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def _check_detection(d: Detection, w: int, h: int) -> None:
    x1, y1, x2, y2 = d.box
    assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
    assert 0.0 <= d.score <= 1.0
    lm = np.asarray(d.landmarks)
    assert lm.shape == (5, 2) and np.isfinite(lm).all()
    # landmarks inside the box (small tolerance), eyes above the mouth corners, nose between them
    assert (lm[:, 0] >= x1 - 2).all() and (lm[:, 0] <= x2 + 2).all()
    assert (lm[:, 1] >= y1 - 2).all() and (lm[:, 1] <= y2 + 2).all()
    assert max(lm[0, 1], lm[1, 1]) < min(lm[3, 1], lm[4, 1])
    assert max(lm[0, 1], lm[1, 1]) < lm[2, 1] < min(lm[3, 1], lm[4, 1])
    # image-left eye and mouth corner are left of the right ones
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]


def test_is_a_detector(detector):
    assert isinstance(detector, Detector)


def test_astronaut_one_face(detector, astronaut):
    dets = detector.detect(np.ascontiguousarray(astronaut))
    assert len(dets) == 1
    d = dets[0]
    _check_detection(d, 512, 512)
    assert d.score > 0.9
    np.testing.assert_allclose(d.box, ASTRONAUT_FACE_BOX, atol=12)
    assert _iou(d.box, ASTRONAUT_FACE_BOX) > 0.8


def test_coffee_no_face(detector, coffee):
    assert detector.detect(np.ascontiguousarray(coffee)) == []


def test_flat_image_no_face(detector):
    assert detector.detect(np.full((120, 160, 3), 128, np.uint8)) == []


def test_tight_face_crop_is_found(detector, astronaut):
    x1, y1, x2, y2 = ASTRONAUT_FACE_BOX
    dx, dy = 0.05 * (x2 - x1), 0.05 * (y2 - y1)
    cx1, cy1, cx2, cy2 = int(x1 - dx), int(y1 - dy), int(x2 + dx), int(y2 + dy)
    crop = np.ascontiguousarray(astronaut[cy1:cy2, cx1:cx2])
    dets = detector.detect(crop)
    assert len(dets) >= 1
    h, w = crop.shape[:2]
    _check_detection(dets[0], w, h)
    # the largest detection is the face filling the crop
    assert dets[0].area > 0.5 * w * h


def test_tiny_image_does_not_crash(detector):
    assert detector.detect(np.zeros((3, 4, 3), np.uint8)) == []


def _two_faces(astronaut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Side by side: a smaller copy (left) and the full-size astronaut (right)."""
    small = np.asarray(Image.fromarray(np.ascontiguousarray(astronaut)).resize((320, 320), Image.BILINEAR))
    canvas = np.full((512, 832, 3), 90, np.uint8)
    canvas[96:416, :320] = small
    canvas[:, 320:] = astronaut
    return canvas, np.hstack([astronaut, astronaut])


def test_two_faces_sorted_by_area_and_max_faces(detector, astronaut):
    mixed, tiled = _two_faces(astronaut)

    dets = detector.detect(tiled)
    assert len(dets) == 2
    for d in dets:
        _check_detection(d, 1024, 512)
    assert dets[0].area >= dets[1].area
    centres = sorted((d.box[0] + d.box[2]) / 2 for d in dets)
    assert centres[0] < 512 < centres[1]

    dets = detector.detect(mixed)
    assert len(dets) == 2
    assert dets[0].area > 1.5 * dets[1].area  # the big (right) face first
    assert (dets[0].box[0] + dets[0].box[2]) / 2 > 320
    assert (dets[1].box[0] + dets[1].box[2]) / 2 < 320
    # the full-size face is where it is in the original, shifted right by 320
    x1, y1, x2, y2 = ASTRONAUT_FACE_BOX
    assert _iou(dets[0].box, (x1 + 320, y1, x2 + 320, y2)) > 0.7

    one = RetinaFaceDetector(max_faces=1, threads=1)
    for img in (tiled, mixed):
        got = one.detect(img)
        assert len(got) == 1
    assert one.detect(mixed)[0].box == pytest.approx(dets[0].box)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((64, 64), np.uint8),  # greyscale
        np.zeros((64, 64, 4), np.uint8),  # RGBA
        np.zeros((64, 64, 3), np.float32),  # wrong dtype
        np.zeros((2, 64, 64, 3), np.uint8),  # a batch
    ],
)
def test_bad_array_raises_value_error(detector, bad):
    with pytest.raises(ValueError):
        detector.detect(bad)


def test_bad_threshold():
    with pytest.raises(ValueError):
        RetinaFaceDetector(score_threshold=1.5)
