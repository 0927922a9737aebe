"""The mirror pass (``tta``): each face averaged with its mirror image, unless the graph does that itself."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from agegender.errors import ModelCardError
from agegender.mirror import mean_log_probs
from agegender.postprocess import softmax

ASSETS = Path(__file__).resolve().parents[1] / "src" / "agegender" / "assets"


def _fast_copy(tmp_path: Path, **changes) -> str:
    """The ``fast`` model (one network, no mirror pass in its graph) with its card changed."""
    shutil.copy(ASSETS / "fast.onnx", tmp_path / "fast.onnx")
    d = json.loads((ASSETS / "fast.json").read_text())
    d.update(changes)
    path = tmp_path / "fast.json"
    path.write_text(json.dumps(d))
    return str(path)


@pytest.fixture(scope="module")
def crops(astronaut) -> np.ndarray:
    from agegender import Predictor

    p = Predictor(model="fast", threads=1)
    return np.stack([p.align(astronaut, p.detect(astronaut)[0]),
                     np.ascontiguousarray(astronaut[100:212, 180:292])])  # a face, and a patch of cheek


def test_mean_log_probs_is_the_log_of_the_mean_distribution():
    a, b = np.array([[2.0, -1.0, 0.5]]), np.array([[-3.0, 0.0, 4.0]])
    got = np.exp(mean_log_probs(a, b).astype(np.float64))
    assert np.allclose(got, (softmax(a) + softmax(b)) / 2, atol=1e-6) and got.sum() == pytest.approx(1, abs=1e-5)


def test_tta_averages_each_face_with_its_mirror_image(crops):
    from agegender import Predictor

    p = Predictor(model="fast", threads=1)
    plain, mirrored = p.run_network(crops), p.run_network(np.ascontiguousarray(crops[:, :, ::-1]))
    p.tta = True
    both = p.run_network(crops)
    assert not np.allclose(plain.gender_logits, mirrored.gender_logits, atol=1e-3)  # the mirror changes it
    assert np.allclose(both.gender_logits, mean_log_probs(plain.gender_logits, mirrored.gender_logits), atol=1e-4)
    assert np.allclose(both.age_logits, mean_log_probs(plain.age_logits, mirrored.age_logits), atol=1e-4)


def test_no_second_mirror_pass_for_a_graph_that_has_one(tmp_path, crops):
    from agegender import Predictor

    card = json.loads((ASSETS / "fast.json").read_text())
    path = _fast_copy(tmp_path, architecture=card["architecture"] + " (mirror TTA)")
    p = Predictor(model=path, threads=1, tta=True)
    assert p.card.mirror_in_graph
    got = p.run_network(crops)
    p.tta = False
    assert np.array_equal(got.gender_logits, p.run_network(crops).gender_logits)


def test_card_asking_for_the_dropped_adaptive_mirror_is_refused(tmp_path):
    from agegender import Predictor

    path = _fast_copy(tmp_path, adaptive_mirror={"gender_margin": 0.3, "age_sd": 9.0})
    with pytest.raises(ModelCardError, match="adaptive_mirror") as err:
        Predictor(model=path, threads=1).load(detector=False)
    assert "\n" not in str(err.value)
    assert Predictor(model=_fast_copy(tmp_path, adaptive_mirror=None), threads=1).card.name  # null is fine
