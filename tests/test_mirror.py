"""The adaptive mirror pass: only uncertain faces are run mirrored, and those get exactly what the full
mirror pass gives them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from agegender.card import AdaptiveMirror, ModelCard
from agegender.mirror import uncertain
from agegender.preprocess import to_input

ASSETS = Path(__file__).resolve().parents[1] / "src" / "agegender" / "assets"


def _logits(p_female: float, age_mean: float, age_sd: float) -> tuple[np.ndarray, np.ndarray]:
    years = np.arange(101)
    age = -0.5 * ((years - age_mean) / age_sd) ** 2
    return np.log([[1 - p_female, p_female]]), age[None]


@pytest.mark.parametrize(("p_female", "sd", "expected"), [
    (0.97, 4.0, False),  # sure of both
    (0.55, 4.0, True),  # gender close to a coin toss
    (0.25, 4.0, False),  # outside (0.3, 0.7)
    (0.97, 14.0, True),  # a wide age distribution
])
def test_uncertain_faces(p_female, sd, expected):
    g, a = _logits(p_female, 35.0, sd)
    assert bool(uncertain(g, a, AdaptiveMirror(gender_margin=0.3, age_sd=9.0))[0]) is expected


def _card_copy(tmp_path: Path, policy: dict | None) -> str:
    """The ``fast`` model (one network, no mirror pass in its graph) with another adaptive-mirror policy."""
    shutil.copy(ASSETS / "fast.onnx", tmp_path / "fast.onnx")
    d = json.loads((ASSETS / "fast.json").read_text())
    d["adaptive_mirror"] = policy
    path = tmp_path / "fast.json"
    path.write_text(json.dumps(d))
    assert ModelCard.load(path).adaptive_mirror == (AdaptiveMirror(**policy) if policy else None)
    return str(path)


def test_policy_mirrors_exactly_the_uncertain_faces(tmp_path, astronaut):
    from agegender import Predictor

    plain_p = Predictor(model=str(ASSETS / "fast.json"), threads=1)
    crops = np.stack([plain_p.align(astronaut, plain_p.detect(astronaut)[0]),
                      np.ascontiguousarray(astronaut[100:212, 180:292])])  # a face, and a patch of cheek
    plain, _ = plain_p.predict_crops(crops)
    plain_p.tta = True
    both, _ = plain_p.predict_crops(crops)
    always = Predictor(model=_card_copy(tmp_path, {"gender_margin": -1.0, "age_sd": 0.0}), threads=1)
    assert always.predict_crops(crops)[0] == both
    never = Predictor(model=_card_copy(tmp_path, {"gender_margin": 0.5, "age_sd": 1e9}), threads=1)
    assert never.predict_crops(crops)[0] == plain
    # a policy that picks one of the two: that one gets the mirror pass, the other stays plain
    raw = never.runtime.run(to_input(crops, never.card.input))
    pf = np.exp(raw.gender_logits[:, 1]) / np.exp(raw.gender_logits).sum(1)
    surer, other = np.sort(np.minimum(pf, 1 - pf))
    assert other - surer > 1e-3
    margin = float(surer + other) / 2  # between the two faces' margins: only the less sure one is above it
    some = Predictor(model=_card_copy(tmp_path, {"gender_margin": margin, "age_sd": 1e9}), threads=1)
    got = some.predict_crops(crops)[0]
    pick = int(np.argmax(np.minimum(pf, 1 - pf)))
    assert got[pick] == both[pick] and got[1 - pick] == plain[1 - pick]
    off = Predictor(model=_card_copy(tmp_path, {"gender_margin": -1.0, "age_sd": 0.0}), threads=1,
                    adaptive_mirror=False)
    assert off.predict_crops(crops)[0] == plain
