"""Grain beyond the training crops': measured on real face crops, smoothed back under the card's ceiling."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from agegender import Predictor
from agegender.card import ModelCard
from agegender.denoise import SIGMAS, noise_ceiling, noise_level, reduce_noise
from agegender.errors import ModelCardError
from agegender.preprocess import to_input
from agegender.runtime import default_model_path


@pytest.fixture(scope="module")
def face(predictor, astronaut) -> np.ndarray:
    """The astronaut's aligned face crop, as the pipeline makes it (a clean studio portrait)."""
    return predictor.align(astronaut, predictor.detect(astronaut)[0])


def grainy(crop: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Film-like grain: the same Gaussian noise on the three channels."""
    noise = np.random.default_rng(seed).normal(0.0, sigma, crop.shape[:2])[..., None]
    return np.clip(crop.astype(np.float32) + noise, 0, 255).round().astype(np.uint8)


def test_noise_level_reads_the_grain_added_to_a_real_face(face):
    clean = noise_level(face)[0]
    assert clean < 3.0
    levels = [noise_level(grainy(face, s))[0] for s in (4.0, 8.0, 12.0)]
    assert levels == sorted(levels)
    # the estimate of 8 levels of grain on a face of its own small noise: sqrt(8^2 + clean^2), within 15 %
    assert abs(levels[1] - np.hypot(8.0, clean)) < 0.15 * 8.0
    with pytest.raises(ValueError):
        noise_level(face[..., :2])


def test_crops_under_the_ceiling_are_left_as_they_are(face):
    crops = np.stack([face, face[:, ::-1]])
    out, sigmas = reduce_noise(crops, ceiling=noise_level(crops).max() + 0.01)
    assert out is crops and not sigmas.any()


def test_grainy_crops_are_smoothed_under_the_ceiling_and_clean_ones_kept(face):
    ceiling = 2.5
    crops = np.stack([grainy(face, 8.0), face, grainy(face, 20.0, seed=1)])
    out, sigmas = reduce_noise(crops, ceiling)
    assert out is not crops and np.array_equal(out[1], face)
    assert sigmas[1, 0] == 0 and sigmas[0, 0] in SIGMAS and sigmas[2, 0] in SIGMAS
    assert sigmas[2, 0] >= sigmas[0, 0]  # more grain, at least as much blur
    assert noise_level(out[0])[0] <= ceiling
    assert noise_level(out[2])[0] < noise_level(crops[2])[0] / 3
    # the face is still there: smoothing keeps the picture close to the clean crop, closer than the grain was
    err = lambda a: np.abs(a.astype(np.float32) - face).mean()  # noqa: E731
    assert err(out[0]) < err(crops[0])


def test_views_are_measured_and_smoothed_one_by_one(face):
    stacked = np.concatenate([face, grainy(face, 10.0)], axis=-1)[None]
    out, sigmas = reduce_noise(stacked, ceiling=2.5)
    assert sigmas[0, 0] == 0 and sigmas[0, 1] > 0
    assert np.array_equal(out[0, ..., :3], face) and not np.array_equal(out[0, ..., 3:], stacked[0, ..., 3:])


def test_to_input_applies_the_cards_ceiling(face):
    spec = ModelCard.load(default_model_path()).input
    plain = dataclasses.replace(spec, noise_ceiling=None)
    capped = dataclasses.replace(spec, noise_ceiling=2.5)
    assert np.array_equal(to_input(face, plain), to_input(face, capped))
    noisy = grainy(face, 10.0)
    assert not np.array_equal(to_input(noisy, plain), to_input(noisy, capped))


def test_noise_ceiling_is_the_percentile_of_the_crops(face):
    crops = np.stack([grainy(face, s, seed=k) for k, s in enumerate((0.0, 2.0, 4.0, 6.0, 8.0))])
    levels = noise_level(crops)
    assert noise_ceiling(crops, 100) == pytest.approx(levels.max())
    assert noise_ceiling(crops, 50) == pytest.approx(np.median(levels))
    with pytest.raises(ValueError):
        noise_ceiling(crops, 0)


def test_the_pipeline_smooths_only_the_grainy_photo(tmp_path, astronaut):
    """Through the whole pipeline: the clean photo reads exactly as without a ceiling, a grainy one does not."""
    src = default_model_path()
    card = json.loads(src.read_text())
    card["input"]["noise_ceiling"] = 2.5
    (tmp_path / "model.json").write_text(json.dumps(card))
    shutil.copy(src.parent / card["weights_file"], tmp_path / card["weights_file"])
    card["input"].pop("noise_ceiling")
    (tmp_path / "plain.json").write_text(json.dumps(card))
    plain = Predictor(model=tmp_path / "plain.json", threads=1)
    capped = Predictor(model=tmp_path / "model.json", threads=1)

    assert plain.predict(astronaut).faces[0].age == capped.predict(astronaut).faces[0].age
    noisy = grainy(astronaut, 14.0)
    assert plain.predict(noisy).faces[0].age != capped.predict(noisy).faces[0].age


@pytest.mark.parametrize("bad", [-1.0, 0, "high", True])
def test_card_refuses_a_bad_ceiling(bad):
    d = json.loads(default_model_path().read_text())
    d["input"]["noise_ceiling"] = bad
    with pytest.raises(ModelCardError, match="noise_ceiling"):
        ModelCard.from_dict(d)
