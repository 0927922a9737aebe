"""The whole pipeline on real photos: valid, serialisable results; errors recorded or raised."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from agegender.errors import AgeGenderError, ImageLoadError
from agegender.types import ADIENCE_LABELS, Face, Prediction, age_group_of
from conftest import ASTRONAUT_FACE_BOX, exif_bytes, jpeg_bytes


def _check_face(face: Face, width: int, height: int, card) -> None:
    x1, y1, x2, y2 = face.box
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    assert 0.0 <= face.det_score <= 1.0
    assert face.gender in ("male", "female")
    assert 0.0 <= face.p_female <= 1.0
    assert face.gender == ("female" if face.p_female >= 0.5 else "male")
    assert 0.5 <= face.gender_probability <= 1.0
    assert card.age_min <= face.age_low <= face.age <= face.age_high <= card.age_max
    assert 0.0 <= face.age <= 100.0
    assert face.age_group in ADIENCE_LABELS
    assert set(face.age_group_probs) == set(ADIENCE_LABELS)
    assert all(0.0 <= v <= 1.0 for v in face.age_group_probs.values())
    assert math.isclose(sum(face.age_group_probs.values()), 1.0, abs_tol=1e-6)
    assert face.age_group == age_group_of(face.age)  # the group shown holds the age shown (or is the nearest)


def test_astronaut_one_face(predictor, astronaut_path):
    pred = predictor.predict(astronaut_path)
    assert isinstance(pred, Prediction)
    assert pred.ok and pred.error is None
    assert (pred.width, pred.height) == (512, 512)
    assert pred.source == str(astronaut_path)
    assert len(pred) == 1
    face = pred[0]
    _check_face(face, 512, 512, predictor.card)
    np.testing.assert_allclose(face.box, ASTRONAUT_FACE_BOX, atol=12)
    assert len(face.landmarks) == 5
    if face.attention is not None:
        assert face.attention.ndim == 2 and np.isfinite(face.attention).all()
    d = pred.to_dict()
    text = json.dumps(d)
    back = json.loads(text)
    assert back["faces"][0]["gender"] == face.gender
    assert back["error"] is None and back["width"] == 512
    assert "attention" not in back["faces"][0]
    assert str(pred).count("\n") == 1  # header + one face line


def test_same_result_for_path_bytes_array_and_pil(predictor, astronaut_path, astronaut):
    preds = [
        predictor.predict(astronaut_path),
        predictor.predict(astronaut_path.read_bytes()),
        predictor.predict(np.ascontiguousarray(astronaut)),
        predictor.predict(Image.fromarray(np.ascontiguousarray(astronaut))),
    ]
    ref = preds[0][0]
    for p in preds[1:]:
        assert len(p) == 1
        assert p[0].p_female == pytest.approx(ref.p_female, abs=1e-4)
        assert p[0].age == pytest.approx(ref.age, abs=1e-3)
        assert p[0].box == pytest.approx(ref.box, abs=1e-3)


def test_coffee_no_face(predictor, coffee_path):
    pred = predictor.predict(coffee_path)
    assert pred.ok
    assert len(pred) == 0 and pred.faces == ()
    assert (pred.width, pred.height) == (600, 400)
    json.dumps(pred.to_dict())


def test_predict_many_mixed_inputs_in_order(predictor, astronaut_path, coffee_path, astronaut):
    inputs = [
        astronaut_path,
        b"\x00\x01 definitely not an image \xff",
        np.ascontiguousarray(astronaut),
        str(coffee_path),
    ]
    preds = predictor.predict_many(inputs)
    assert len(preds) == len(inputs)
    assert [p.ok for p in preds] == [True, False, True, True]
    assert preds[0].source == str(astronaut_path)
    assert preds[3].source == str(coffee_path)
    assert "bytes" in preds[1].source
    assert "ndarray" in preds[2].source
    bad = preds[1]
    assert bad.error and "\n" not in bad.error
    assert bad.faces == ()
    assert [len(p) for p in (preds[0], preds[2], preds[3])] == [1, 1, 0]
    for p in (preds[0], preds[2]):
        _check_face(p[0], 512, 512, predictor.card)
    assert preds[0][0].age == pytest.approx(preds[2][0].age, abs=1e-3)
    json.dumps([p.to_dict() for p in preds])


def test_iter_predict_small_chunks_same_results(predictor, astronaut_path, coffee_path):
    inputs = [astronaut_path, coffee_path, b"", astronaut_path, coffee_path]
    chunked = list(predictor.iter_predict(inputs, chunk=2))
    whole = predictor.predict_many(inputs)
    assert [p.source for p in chunked] == [p.source for p in whole]
    assert [len(p) for p in chunked] == [1, 0, 0, 1, 0]
    assert [p.ok for p in chunked] == [True, True, False, True, True]
    assert chunked[3][0].age == pytest.approx(whole[3][0].age, abs=1e-4)


def test_predict_many_raise_mode(predictor, astronaut_path):
    with pytest.raises(ImageLoadError):
        predictor.predict_many([astronaut_path, b"garbage"], on_error="raise")
    with pytest.raises(ValueError):
        predictor.predict_many([astronaut_path], on_error="ignore")


@pytest.mark.parametrize("bad", [b"garbage bytes", b"", "/nonexistent/dir/photo.jpg", np.zeros((4, 4, 2), np.uint8)])
def test_predict_bad_input_raises(predictor, bad):
    with pytest.raises(ImageLoadError) as ei:
        predictor.predict(bad)
    assert isinstance(ei.value, AgeGenderError)
    assert "\n" not in str(ei.value)


def test_predict_directory_raises(predictor, tmp_path):
    with pytest.raises(ImageLoadError):
        predictor.predict(tmp_path)


def test_aligned_one_face_per_image(predictor, astronaut, coffee):
    x1, y1, x2, y2 = (int(v) for v in ASTRONAUT_FACE_BOX)
    face_crop = np.ascontiguousarray(astronaut[y1:y2, x1:x2])
    inputs = [
        face_crop,
        np.ascontiguousarray(astronaut),
        np.ascontiguousarray(coffee),
        np.full((7, 300, 3), 9, np.uint8),
    ]
    preds = predictor.predict_many(inputs, aligned=True)
    assert len(preds) == len(inputs)
    for p, img in zip(preds, inputs, strict=True):
        assert p.ok and len(p) == 1
        h, w = img.shape[:2]
        assert p[0].box == (0.0, 0.0, float(w), float(h))
        assert p[0].landmarks == ()
        _check_face(p[0], w, h, predictor.card)
        json.dumps(p.to_dict())
    single = predictor.predict(face_crop, aligned=True)
    assert len(single) == 1
    assert single[0].age == pytest.approx(preds[0][0].age, abs=1e-4)


def test_exif_rotated_photo_still_one_face(predictor, astronaut, tmp_path):
    # stored pixels turned 90 degrees counter-clockwise; orientation 6 tells viewers to turn them back
    stored = np.ascontiguousarray(np.rot90(astronaut, k=1))
    path = tmp_path / "rotated.jpg"
    path.write_bytes(jpeg_bytes(stored, quality=95, exif=exif_bytes(6)))
    pred = predictor.predict(path)
    assert pred.ok and (pred.width, pred.height) == (512, 512)
    assert len(pred) == 1
    _check_face(pred[0], 512, 512, predictor.card)
    # upright again, so the face is where it is in the original photo
    np.testing.assert_allclose(pred[0].box, ASTRONAUT_FACE_BOX, atol=15)


def test_max_faces(astronaut):
    from agegender import Predictor

    two = np.hstack([astronaut, astronaut])
    assert len(Predictor(threads=1).predict(two)) == 2
    one = Predictor(threads=1, max_faces=1).predict(two)
    assert len(one) == 1


def test_mirror_tta_is_the_average_of_the_face_and_its_mirror(astronaut):
    from agegender import Predictor

    p = Predictor(model="fast")  # one network without a mirrored branch in its graph
    crop = p.align(astronaut, p.detect(astronaut)[0])
    plain, _ = p.predict_crops(crop[None])
    mirrored, _ = p.predict_crops(np.ascontiguousarray(crop[None, :, ::-1]))
    p.tta = True
    both, _ = p.predict_crops(crop[None])
    # the mirrored view changes the prediction, and TTA lands between the two views
    assert plain[0].p_female != mirrored[0].p_female
    lo, hi = sorted((plain[0].p_female, mirrored[0].p_female))
    assert lo - 1e-6 <= both[0].p_female <= hi + 1e-6
    lo, hi = sorted((plain[0].age, mirrored[0].age))
    assert lo - 0.5 <= both[0].age <= hi + 0.5


def test_builtin_models_share_the_input_and_name_their_sources():
    from agegender import Predictor
    from agegender.runtime import builtin_models

    assert {"default", "fast"} <= set(builtin_models())
    default, fast = Predictor().card, Predictor(model="fast").card
    assert default.input.size == fast.input.size
    assert default.alignment == fast.alignment
    # the default is one network on the face and its mirror image (two passes); fast one network, one pass;
    # both come out of the same training run (directly, or as points between it and its start)
    assert default.mirror_in_graph and default.architecture.count("attn_mbv2") == 1
    assert "+" not in fast.architecture and not fast.mirror_in_graph

    def run_of(card) -> str:  # noqa: ANN001
        cfg = card.training["configs"][0]
        return cfg.get("interpolated", {}).get("tuned", cfg["name"])

    assert run_of(default) == run_of(fast)
    for card in (default, fast):
        # every source named with its terms, and scored on its own test part and through the whole pipeline
        for source, words in (("utkface", "non-commercial"), ("aaf", "All-Age-Faces"), ("fairface", "CC BY 4.0")):
            assert words in card.training["terms"] and source in card.metrics["by_source"]
        assert card.metrics["by_source"]["utkface"]["n"] == 3164 and "test" in card.metrics["split"]
        assert {"fairface_val", "utkface_test", "aaf_official_val"} <= set(card.metrics["full_pipeline"])
        assert card.metrics["full_pipeline"]["fairface_val"]["worst_group"]["group"]
        assert any(x.startswith("Measured on fairface_val") for x in card.limitations)
