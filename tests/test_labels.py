"""Label placement shared by annotated images, video frames and the web page: on real photos of several
faces side by side, labels stay inside the image, never overlap, and scale with the image."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agegender import annotate
from agegender.annotate import Label, color_of, draw_faces, face_labels, layout_labels, place_labels
from agegender.types import Face
from agegender.video.results import FrameResult, TrackedFace
from agegender.video.writer import draw_frame

#: the astronaut's head and shoulders in skimage's astronaut.png, a little wider than the face (178-273)
HEAD = (160, 30, 290, 200)


def six_side_by_side(astronaut: np.ndarray, tile_width: int) -> np.ndarray:
    """Six copies of the astronaut's head, ``tile_width`` pixels apart: neighbours' labels compete."""
    head = Image.fromarray(np.ascontiguousarray(astronaut)).crop(HEAD)
    tile = head.resize((tile_width, round(tile_width * head.height / head.width)), Image.LANCZOS)
    return np.concatenate([np.asarray(tile)] * 6, axis=1)


def inside(box, width: int, height: int) -> bool:
    x1, y1, x2, y2 = box
    return 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height


def apart(a, b) -> bool:
    return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def assert_readable(labels: list[Label | None], width: int, height: int) -> None:
    boxes = [lab.box for lab in labels if lab is not None]
    assert len(boxes) == len(labels), "a label was left out"
    assert all(inside(b, width, height) for b in boxes), boxes
    for a, b in itertools.combinations(boxes, 2):
        assert apart(a, b), (a, b)
    assert all(lab.font_size >= annotate.MIN_FONT_PX for lab in labels if lab is not None)


@pytest.fixture(scope="module")
def six(astronaut, predictor) -> tuple[np.ndarray, tuple[Face, ...]]:
    """Six heads 80 px apart: one-line labels (about 100 px wide) would run into the neighbours'."""
    image = six_side_by_side(astronaut, 80)
    faces = predictor.predict(image).faces
    assert len(faces) == 6
    return image, faces


def test_six_faces_side_by_side_six_readable_labels(six, tmp_path):
    image, faces = six
    h, w = image.shape[:2]
    labels = face_labels(faces, w, h)
    assert_readable(labels, w, h)
    for face, lab in zip(faces, labels):  # each label stays in its face's column: it names that face
        assert lab.box[0] < face.box[2] and face.box[0] < lab.box[2], (face.box, lab.box)
    drawn = draw_faces(image, faces)
    out = Path(os.environ.get("AGEGENDER_LABELS_PNG", tmp_path / "six.png"))
    drawn.save(out)
    pixels = np.asarray(drawn)
    for face, lab in zip(faces, labels):  # drawn where laid out: the label's background in the face's colour
        x1, y1, x2, y2 = (round(v) for v in lab.box)
        patch = pixels[y1:y2, x1:x2].reshape(-1, 3)
        share = (np.abs(patch.astype(int) - color_of(face.gender)).sum(1) < 30).mean()
        assert share > 0.5, share


def free_spot_exists(size: tuple[float, float], placed: list, width: int, height: int, gap: float) -> bool:
    """Brute force, every whole-pixel position: is there room for a label of ``size`` apart from ``placed``?"""
    w, h = size
    if w > width or h > height:
        return False
    x, y = (a.ravel().astype(float) for a in np.meshgrid(np.arange(width - w + 1), np.arange(height - h + 1)))
    ok = np.ones(len(x), bool)
    for a in placed:
        ok &= (x >= a[2] + gap) | (a[0] >= x + w + gap) | (y >= a[3] + gap) | (a[1] >= y + h + gap)
    return bool(ok.any())


def test_placement_never_overlaps_nor_leaves_the_image_nor_gives_up_early():
    """Random crowds of faces: every label is inside, 2 px apart from the others, and a label is left
    out only when no spot for it is left at all (checked at every pixel)."""
    rng = np.random.default_rng(7)
    left_out = 0
    for _ in range(40):
        w, h = int(rng.integers(60, 400)), int(rng.integers(40, 300))
        n = int(rng.integers(1, 30))
        x, y = rng.uniform(-20, w, n), rng.uniform(-20, h, n)
        side = rng.uniform(8, 0.5 * min(w, h), n)
        faces = [(a, b, a + s, b + s) for a, b, s in zip(x, y, side)]
        sizes = [(float(rng.integers(20, 160)), float(rng.integers(10, 40))) for _ in range(n)]
        spots = place_labels(faces, sizes, w, h, gap=2)
        placed = [s for s in spots if s is not None]
        assert all(inside(s, w, h) for s in placed)
        for a, b in itertools.combinations(placed, 2):
            assert apart((a[0] - 2, a[1] - 2, a[2] + 2, a[3] + 2), b)
        for k, (s, size) in enumerate(zip(spots, sizes)):
            if s is None:  # nothing free for it among the labels placed before it
                left_out += 1
                before = [p for p in spots[:k] if p is not None]
                assert not free_spot_exists(size, before, w, h, 2), (k, size)
            else:
                assert (s[2] - s[0], s[3] - s[1]) == pytest.approx(size)
    assert left_out > 0  # the crowds were crowded enough to test that


def test_labels_and_dots_scale_with_the_image(astronaut, predictor):
    small = np.asarray(Image.fromarray(np.ascontiguousarray(astronaut)).resize((128, 128), Image.LANCZOS))
    faces = predictor.predict(small).faces
    assert len(faces) == 1 and faces[0].box[2] - faces[0].box[0] < 30  # a face of about 24 px
    labels = face_labels(faces, 128, 128)
    assert_readable(labels, 128, 128)  # the label is not cut off by the image's edge
    drawn = np.asarray(draw_faces(small, faces)).astype(int)
    x1, y1, x2, y2 = (round(v) for v in faces[0].box)
    inner = (slice(y1 + 3, y2 - 2), slice(x1 + 3, x2 - 2))  # the face inside its box: no landmark dots on it
    assert np.abs(drawn[inner] - small[inner]).max() < 8
    big_faces = [f.scaled(4.0) for f in faces]
    big = face_labels(big_faces, 512, 512)
    assert big[0].font_size > labels[0].font_size  # 4x the image: a larger font
    font = annotate.font_size_for
    assert font(4000, 3000) == pytest.approx(4 * font(1000, 750), abs=2) and font(200, 150) >= 10


def test_big_face_gets_landmark_dots(astronaut, predictor):
    faces = predictor.predict(astronaut).faces
    drawn = np.asarray(draw_faces(astronaut, faces)).astype(int)
    for x, y in faces[0].landmarks:
        assert tuple(drawn[round(y), round(x)]) == (255, 255, 0)


def test_one_tiny_image_label_fits_on_two_lines():
    """An image too narrow for the one-line label: two lines, inside the image."""
    parts = [("0: F 97%", "34 (28-41)")]
    one = layout_labels([(5, 30, 45, 70)], parts, 200, 80)
    two = layout_labels([(5, 30, 45, 70)], parts, 60, 80)
    assert len(one[0].lines) == 1 and len(two[0].lines) == 2
    assert_readable(two, 60, 80)


def test_video_frames_use_the_same_placement(astronaut):
    """Two tracked faces side by side in a video frame: labels apart and inside, as on photos."""
    frame = six_side_by_side(astronaut, 80)[:, :160].copy()
    h, w = frame.shape[:2]
    tracked = tuple(TrackedFace(track_id=t, box=(8.0 + 80 * k, 30.0, 72.0 + 80 * k, 100.0), detected=k == 0,
                                det_score=0.9 if k == 0 else None, gender="female", p_female=0.9, age=33.0,
                                age_low=25.0, age_high=41.0, age_group="25-32") for k, t in enumerate((11, 12)))
    drawn = draw_frame(frame, FrameResult(index=0, time=0.0, width=w, height=h, detected=True, faces=tracked))
    assert drawn.shape == frame.shape and drawn.dtype == np.uint8 and drawn.flags.writeable
    parts = [annotate.label_parts(f, f"#{f.track_id} ") for f in tracked]
    labels = layout_labels([f.box for f in tracked], parts, w, h)
    assert [lab.lines[0].text[:9] for lab in labels] == ["#11 F 90%", "#12 F 90%"]
    assert_readable(labels, w, h)
    for lab in labels:
        x1, y1, x2, y2 = (round(v) for v in lab.box)
        share = (np.abs(drawn[y1:y2, x1:x2].reshape(-1, 3).astype(int) - color_of("female")).sum(1) < 30).mean()
        assert share > 0.5
    assert not np.array_equal(frame, drawn) and np.array_equal(frame, six_side_by_side(astronaut, 80)[:, :160])
