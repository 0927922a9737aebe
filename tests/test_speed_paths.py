"""The fast paths give the same answers: draft-mode JPEG decoding, the padded search around faces that touch
the border, saved optimised ONNX graphs, and the pipeline that spreads images and model calls over threads.
(Timings live in benchmarks/speed.py, not here.)"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from agegender import Predictor
from agegender.card import ModelCard
from agegender.detect import RetinaFaceDetector
from agegender.errors import ImageLoadError, ModelCardError
from agegender.io import load_image, load_image_reduced
from agegender.runtime import CACHE_ENV, ModelRuntime, cached_model_path, default_model_path
from conftest import ASTRONAUT_FACE_BOX, exif_bytes, jpeg_bytes


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _on_canvas(face: np.ndarray, size: tuple[int, int], at: tuple[int, int], grey: int = 110) -> np.ndarray:
    """``face`` pasted onto a flat grey canvas of ``size`` (w, h) at ``at`` (x, y); parts outside are cut."""
    w, h = size
    canvas = np.full((h, w, 3), grey, np.uint8)
    x, y = at
    fh, fw = face.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + fw), min(h, y + fh)
    canvas[y0:y1, x0:x1] = face[y0 - y : y1 - y, x0 - x : x1 - x]
    return canvas


def _scaled(img: np.ndarray, factor: float) -> np.ndarray:
    h, w = img.shape[:2]
    return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((round(w * factor), round(h * factor)),
                                                                          Image.BICUBIC))


def _match(a, b):
    """Pairs of faces of two predictions, matched by box overlap."""
    out = []
    for f in a.faces:
        g = max(b.faces, key=lambda g: _iou(f.box, g.box))
        out.append((f, g))
    return out


@pytest.fixture(scope="module")
def big_jpeg(astronaut, tmp_path_factory):
    """A 2400x1600 JPEG: the astronaut scaled 2x, and a second copy as it is (a 95 px face) further right."""
    canvas = _on_canvas(_scaled(astronaut, 2.0), (2400, 1600), (100, 200))
    canvas[700:1212, 1500:2012] = np.ascontiguousarray(astronaut)
    path = tmp_path_factory.mktemp("big") / "big.jpg"
    path.write_bytes(jpeg_bytes(canvas, quality=92))
    return path


# -- draft-mode decoding ----------------------------------------------------------------------------------------


def test_large_jpeg_is_decoded_reduced_for_the_detector(big_jpeg):
    full = load_image(big_jpeg)
    small, scale, size = load_image_reduced(big_jpeg, 640)
    assert size == (full.shape[1], full.shape[0]) == (2400, 1600)
    assert scale < 1.0 and max(small.shape[:2]) >= 640
    assert small.shape[1] == pytest.approx(2400 * scale, abs=1)
    # the reduced image is the full one, smaller
    ref = np.asarray(Image.fromarray(full).resize((small.shape[1], small.shape[0]), Image.BOX), dtype=float)
    assert np.abs(small.astype(float) - ref).mean() < 4


def test_small_jpegs_other_formats_and_arrays_are_decoded_in_full(astronaut, astronaut_path, tmp_path):
    jpg = tmp_path / "a.jpg"
    jpg.write_bytes(jpeg_bytes(np.ascontiguousarray(astronaut)))
    for src in (astronaut_path, jpg, jpg.read_bytes(), np.ascontiguousarray(astronaut)):
        img, scale, size = load_image_reduced(src, 640)
        assert scale == 1.0 and size == (512, 512)
        np.testing.assert_array_equal(img, load_image(src))


def test_reduced_decoding_honours_exif_rotation(tmp_path):
    stored = np.zeros((1400, 2000, 3), np.uint8)
    stored[:, :1000] = (220, 30, 30)
    stored[:, 1000:] = (30, 30, 220)
    path = tmp_path / "rot.jpg"
    path.write_bytes(jpeg_bytes(stored, quality=95, exif=exif_bytes(6)))
    small, scale, size = load_image_reduced(path, 640)
    full = load_image(path)
    assert size == (full.shape[1], full.shape[0]) == (1400, 2000)
    assert scale < 1.0 and small.shape[0] > small.shape[1]  # rotated like the full image
    ref = np.asarray(Image.fromarray(full).resize((small.shape[1], small.shape[0]), Image.BOX), dtype=float)
    assert np.abs(small.astype(float) - ref).mean() < 4


def test_reduced_decoding_errors_are_image_load_errors(tmp_path):
    with pytest.raises(ImageLoadError):
        load_image_reduced(tmp_path / "missing.jpg", 640)
    with pytest.raises(ImageLoadError):
        load_image_reduced(tmp_path, 640)
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageLoadError):
        load_image_reduced(tmp_path / "empty.jpg", 640)


def test_draft_decoding_gives_the_same_faces_and_predictions(big_jpeg):
    p = Predictor(threads=1, workers=1)
    from_file = p.predict(big_jpeg)  # the detector sees the draft-decoded image; alignment the full one
    from_array = p.predict(load_image(big_jpeg))  # an array: decoded in full, as before
    assert (from_file.width, from_file.height) == (from_array.width, from_array.height) == (2400, 1600)
    assert len(from_file.faces) == len(from_array.faces) == 2
    for f, g in _match(from_file, from_array):
        assert _iou(f.box, g.box) > 0.85
        assert abs(f.age - g.age) < 3.0
        assert abs(f.p_female - g.p_female) < 0.1
    big = from_file.faces[0]
    x1, y1, x2, y2 = (2 * v for v in ASTRONAUT_FACE_BOX)
    assert _iou(big.box, (x1 + 100, y1 + 200, x2 + 100, y2 + 200)) > 0.7


def test_no_face_in_a_large_jpeg(coffee, tmp_path):
    path = tmp_path / "coffee.jpg"
    path.write_bytes(jpeg_bytes(_scaled(coffee, 3.0)))
    pred = Predictor(threads=1, workers=1).predict(path)
    assert pred.ok and pred.faces == () and (pred.width, pred.height) == (1800, 1200)


# -- the detector's second pass ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def detector() -> RetinaFaceDetector:
    return RetinaFaceDetector(threads=1)


@pytest.mark.parametrize("side", ["left", "right", "top", "bottom"])
def test_face_cut_by_the_border_is_found_whole(detector, astronaut, side):
    """A 448x448 web photo whose (large) face is cut by one border: found once, landmarked as a face."""
    face = _scaled(astronaut, 1.6)  # face about 150 x 195 px
    fx1, fy1, fx2, fy2 = (1.6 * v for v in ASTRONAUT_FACE_BOX)
    cut = 0.15 * (fx2 - fx1)  # this much of the face falls outside the picture
    x = {"left": -fx1 - cut, "right": 448 - fx2 + cut}.get(side, 224 - (fx1 + fx2) / 2)
    y = {"top": -fy1 - cut, "bottom": 448 - fy2 + cut}.get(side, 224 - (fy1 + fy2) / 2)
    img = _on_canvas(face, (448, 448), (round(x), round(y)))
    dets = detector.detect(img)
    assert len(dets) == 1
    d = dets[0]
    truth = (max(0, fx1 + x), max(0, fy1 + y), min(448, fx2 + x), min(448, fy2 + y))
    assert _iou(d.box, truth) > 0.6
    lm = np.asarray(d.landmarks)
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # eyes and mouth corners in order
    assert max(lm[0, 1], lm[1, 1]) < lm[2, 1] < min(lm[3, 1], lm[4, 1])


def test_small_faces_are_kept_next_to_a_face_at_the_border(detector, astronaut):
    """The second pass only searches around the face at the border: a 30 px face elsewhere stays found."""
    canvas = _on_canvas(_scaled(astronaut, 1.2), (960, 720), (-230, 100))  # big face cut by the left edge
    tiny = _scaled(astronaut, 0.3)  # a face of about 29 x 36 px
    canvas[300 : 300 + tiny.shape[0], 700 : 700 + tiny.shape[1]] = tiny
    dets = detector.detect(canvas)
    assert len(dets) == 2
    tx1, ty1, tx2, ty2 = (0.3 * v for v in ASTRONAUT_FACE_BOX)
    assert _iou(dets[1].box, (tx1 + 700, ty1 + 300, tx2 + 700, ty2 + 300)) > 0.5
    assert dets[0].box[0] <= 0.02 * 960  # the big one does touch the border


def _counted(detector: RetinaFaceDetector, **settings) -> tuple[RetinaFaceDetector, list[tuple[int, float]]]:
    """A detector sharing ``detector``'s session whose passes are recorded: (longer side of the image it was
    given, its border) for each (benchmark-style instrumentation of one instance; nothing is replaced)."""
    det = RetinaFaceDetector(threads=1, **settings)
    det._session = detector._get_session()
    calls: list[tuple[int, float]] = []
    inner = det._detect

    def counting(image, pad, *rest):
        calls.append((max(image.shape[:2]), pad))
        return inner(image, pad, *rest)

    det._detect = counting
    return det, calls


def test_faces_away_from_the_border_need_one_pass(detector, astronaut):
    """A face under half the photo: the small look (block means to 112-223 px) does not settle it, and one
    full-size pass does; without the look, that one pass alone."""
    canvas = _on_canvas(np.ascontiguousarray(astronaut), (900, 700), (190, 90))
    det, calls = _counted(detector)
    assert len(det.detect(canvas)) == 1
    assert calls == [(113, 0.0), (900, 0.0)]  # 900 px in blocks of 8: 113 px (rounded up)
    off, calls_off = _counted(detector, coarse_side=0)
    assert len(off.detect(canvas)) == 1 and calls_off == [(900, 0.0)]


def test_second_pass_only_when_a_landmark_is_near_the_border(detector, astronaut):
    """A face whose box touches the border while its eyes, nose and mouth are well inside is aligned from
    the first pass; a face cut next to a landmark is searched again, padded, and found whole."""
    face = _scaled(astronaut, 1.6)
    fx1, fy1, fx2, fy2 = (1.6 * v for v in ASTRONAUT_FACE_BOX)
    y = round(224 - (fy1 + fy2) / 2)
    counts = {}
    for cut in (0.0, 0.3):  # share of the face's width past the left edge
        img = _on_canvas(face, (448, 448), (round(-fx1 - cut * (fx2 - fx1)), y))
        det, calls = _counted(detector)
        dets = det.detect(img)
        assert len(dets) == 1 and dets[0].box[0] <= 0.02 * 448  # found, touching the border
        lm = np.asarray(dets[0].landmarks)
        assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]
        assert calls[:2] == [(112, 0.0), (448, 0.0)]  # the look (the face is under half the photo), full size
        counts[cut] = len(calls) - 2
    assert counts == {0.0: 0, 0.3: 1}


# -- the small look: a face that fills the photo ----------------------------------------------------------------


def _portrait(astronaut: np.ndarray, side: int = 448, factor: float = 3.2, at: tuple[int, int] = (-450, -70)
              ) -> np.ndarray:
    """A ``side`` x ``side`` photo whose face (the astronaut's, ``factor`` times) fills more than half of it."""
    return _on_canvas(_scaled(astronaut, factor), (side, side), at)


def _eye(d) -> float:
    return float(np.linalg.norm(np.asarray(d.landmarks)[0] - np.asarray(d.landmarks)[1]))


def test_a_face_filling_the_photo_is_found_by_the_small_look_alone(detector, astronaut):
    img = _portrait(astronaut)
    det, calls = _counted(detector)
    (d,) = det.detect(img)
    assert calls == [(112, 0.0)]  # 448 px shrunk 4 times: one pass of 112 x 112 pixels
    assert min(d.box[2] - d.box[0], d.box[3] - d.box[1]) >= 224
    (full,) = RetinaFaceDetector(threads=1, coarse_side=0).detect(img)  # the full-size search, as before
    assert _iou(d.box, full.box) > 0.8
    lm, ref = np.asarray(d.landmarks), np.asarray(full.landmarks)
    assert np.linalg.norm(lm - ref, axis=1).max() < 0.2 * _eye(full)


def test_the_small_look_defers_to_the_full_search_next_to_a_smaller_face(detector, astronaut):
    """A face filling 60 % of the photo beside one of a fifth: the look sees both, the smaller is under half the
    photo, so the full-size search decides and keeps both."""
    img = _portrait(astronaut, side=640, factor=3.0, at=(-420, -40))
    small = _scaled(astronaut, 0.6)  # a face of about 57 x 73 px
    img[380 : 380 + small.shape[0], 420 : 420 + small.shape[1]] = small[: 640 - 380, : 640 - 420]
    det, calls = _counted(detector)
    dets = det.detect(img)
    assert len(dets) == 2 and calls[:2] == [(128, 0.0), (640, 0.0)]


def test_a_portrait_jpeg_is_decoded_once_at_reduced_size(detector, astronaut, tmp_path, monkeypatch):
    """A 1200 px JPEG whose face fills it: decoded once, in draft mode, for the look, the border search and
    the crop; the answer is the one of the full-size search within the grain of a rescaled photo."""
    import agegender.predictor as predictor_module

    img = _portrait(astronaut, side=1200, factor=8.0, at=(-1200, -220))
    path = tmp_path / "portrait.jpg"
    path.write_bytes(jpeg_bytes(img, quality=92))
    scales = []
    real = predictor_module.load_image_reduced

    def recording(*args, **kwargs):
        out = real(*args, **kwargs)
        scales.append(out[1])
        return out

    monkeypatch.setattr(predictor_module, "load_image_reduced", recording)
    p = Predictor(threads=1, workers=1)
    (face,) = p.predict(path)
    assert scales == [0.25]  # 300 x 300 pixels decoded, never the full 1200 x 1200
    monkeypatch.undo()
    (ref,) = Predictor(threads=1, workers=1, detector=RetinaFaceDetector(threads=1, coarse_side=0)).predict(
        load_image(path))
    assert _iou(face.box, ref.box) > 0.8
    assert abs(face.age - ref.age) < 5.0 and abs(face.p_female - ref.p_female) < 0.2


# -- saved optimised graphs ---------------------------------------------------------------------------------------


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


def test_saved_optimised_model_gives_the_same_outputs(cache, monkeypatch, astronaut):
    p = Predictor(threads=1, workers=1)
    crops = np.stack([p.align(np.ascontiguousarray(astronaut), d) for d in p.detect(np.ascontiguousarray(astronaut))])
    first = ModelRuntime(threads=1)  # builds the cache
    card = ModelCard.load(default_model_path())
    saved = list(cache.glob("model-*.onnx"))
    assert len(saved) == 1 and card.sha256 in saved[0].name
    second = ModelRuntime(threads=1)  # loads it
    monkeypatch.setenv(CACHE_ENV, "off")
    plain = ModelRuntime(threads=1)
    from agegender.preprocess import to_input

    x = to_input(crops, card.input)
    for rt in (first, second):
        for got, want in zip(rt.session.run(None, {card.input.name: x}), plain.session.run(None, {card.input.name: x})):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_a_broken_saved_model_is_ignored(cache):
    ModelRuntime(threads=1)
    (saved,) = cache.glob("model-*.onnx")
    saved.write_bytes(b"not an onnx graph")
    rt = ModelRuntime(threads=1)  # falls back to the shipped file
    assert rt.card.sha256 in saved.name


def test_altered_weights_are_refused_even_with_a_saved_model(cache, tmp_path):
    src = default_model_path()
    card = ModelCard.load(src)
    folder = tmp_path / "m"
    folder.mkdir()
    shutil.copy(src, folder / "model.json")
    shutil.copy(src.parent / card.weights_file, folder / card.weights_file)
    ModelRuntime(folder, threads=1)
    assert cached_model_path(f"model-{card.sha256}-{(folder / card.weights_file).stat().st_size}").is_file()
    data = bytearray((folder / card.weights_file).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / card.weights_file).write_bytes(bytes(data))
    with pytest.raises(ModelCardError, match="sha256"):
        ModelRuntime(folder, threads=1)


def test_detector_graph_is_saved_and_reused(cache, astronaut):
    a = RetinaFaceDetector(threads=1).detect(np.ascontiguousarray(astronaut))
    assert len(list(cache.glob("retinaface-*.onnx"))) == 1
    b = RetinaFaceDetector(threads=1).detect(np.ascontiguousarray(astronaut))
    assert len(a) == len(b) == 1
    np.testing.assert_allclose(a[0].box, b[0].box, atol=1e-3)


def test_cache_can_be_turned_off(monkeypatch, tmp_path):
    from agegender.runtime import cache_dir

    for off in ("", "off", "0"):
        monkeypatch.setenv(CACHE_ENV, off)
        assert cache_dir() is None
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "agegender"


# -- the pipeline -------------------------------------------------------------------------------------------------


def test_threaded_pipeline_gives_the_same_results_in_order(astronaut_path, coffee_path, big_jpeg, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    inputs = [astronaut_path, coffee_path, bad, big_jpeg, astronaut_path] * 3
    one = list(Predictor(threads=1, workers=1).iter_predict(inputs, chunk=2))
    two = list(Predictor(workers=2).iter_predict(inputs, chunk=2))
    assert [p.source for p in two] == [str(p) for p in inputs]
    for a, b in zip(one, two):
        assert (a.error is None) == (b.error is None)
        assert len(a.faces) == len(b.faces)
        for f, g in zip(a.faces, b.faces):
            assert f.box == pytest.approx(g.box, abs=1e-3)
            assert f.age == pytest.approx(g.age, abs=0.05)
            assert f.p_female == pytest.approx(g.p_female, abs=1e-3)
    with pytest.raises(ImageLoadError):
        list(Predictor(workers=2).iter_predict(inputs, on_error="raise"))


def test_model_threads():
    assert Predictor(threads=0, workers=2).model_threads == 1  # the pipeline spreads calls over the cores
    assert Predictor(threads=0, workers=1).model_threads == 0
    assert Predictor(threads=3, workers=2).model_threads == 3


def test_a_bad_model_stops_the_threaded_pipeline_before_any_result(tmp_path, astronaut_path):
    src = default_model_path()
    card = ModelCard.load(src)
    shutil.copy(src, tmp_path / "model.json")
    data = bytearray((src.parent / card.weights_file).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / card.weights_file).write_bytes(bytes(data))
    got = []
    with pytest.raises(ModelCardError, match="sha256"):
        for pred in Predictor(model=tmp_path, workers=2).iter_predict([astronaut_path] * 20, chunk=4):
            got.append(pred)
    assert got == []
