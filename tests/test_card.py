"""Model card round trip, weight verification, refusing unknown cards; post-processing maths."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from agegender.card import CARD_VERSION, ModelCard, sha256_file
from agegender.errors import ModelCardError
from agegender.postprocess import decode, group_probabilities, quantile, softmax
from agegender.runtime import ModelRuntime, default_model_path, resolve_card_path
from agegender.types import ADIENCE_GROUPS, ADIENCE_LABELS, age_group_of


@pytest.fixture(scope="module")
def card() -> ModelCard:
    return ModelCard.load(default_model_path())


@pytest.fixture
def model_copy(tmp_path):
    """The packaged model.onnx + model.json copied into a temporary folder."""
    src = default_model_path()
    card = ModelCard.load(src)
    shutil.copy(src, tmp_path / "model.json")
    shutil.copy(src.parent / card.weights_file, tmp_path / card.weights_file)
    return tmp_path


# -- the card ----------------------------------------------------------------------------------------------


def test_packaged_card_is_consistent(card):
    weights = default_model_path().parent / card.weights_file
    assert weights.is_file()
    assert sha256_file(weights) == card.sha256
    assert len(card.sha256) == 64
    assert card.age_max > card.age_min
    assert len(card.alignment.template) == 5
    assert set(card.gender_labels) == {"male", "female"}
    assert 0.0 < card.interval[0] < card.interval[1] < 1.0


def test_card_round_trip(card, tmp_path):
    path = tmp_path / "card.json"
    card.save(path)
    again = ModelCard.load(path)
    assert again == card
    assert json.loads(path.read_text())["format_version"] == CARD_VERSION
    assert again.to_json() == card.to_json()


def test_resolve_card_path(tmp_path):
    assert resolve_card_path(None) == default_model_path()
    assert resolve_card_path(tmp_path) == tmp_path / "model.json"
    assert resolve_card_path(tmp_path / "m.onnx") == tmp_path / "m.json"


def test_sha256_file(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"abc")
    assert sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# -- the runtime refuses what it cannot trust ----------------------------------------------------------------


def test_runtime_loads_an_intact_copy(model_copy):
    rt = ModelRuntime(model_copy / "model.json", threads=1)
    assert rt.card.sha256 == sha256_file(rt.path)


def _one_line_card_error(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg and msg.strip() == msg and msg
    return msg


def test_runtime_refuses_altered_weights(model_copy):
    card = ModelCard.load(model_copy / "model.json")
    weights = model_copy / card.weights_file
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    for spec in (model_copy / "model.json", model_copy, weights):  # card, folder or ONNX file
        with pytest.raises(ModelCardError) as ei:
            ModelRuntime(spec)
        msg = _one_line_card_error(ei)
        assert "sha256" in msg


def test_runtime_refuses_missing_weights(model_copy):
    (model_copy / "model.onnx").unlink()
    with pytest.raises(ModelCardError) as ei:
        ModelRuntime(model_copy)
    assert "not found" in _one_line_card_error(ei)


def test_refuses_future_format_version(model_copy):
    path = model_copy / "model.json"
    d = json.loads(path.read_text())
    d["format_version"] = 99
    path.write_text(json.dumps(d))
    for load in (ModelCard.load, ModelRuntime):
        with pytest.raises(ModelCardError) as ei:
            load(path)
        msg = _one_line_card_error(ei)
        assert "99" in msg and "version" in msg


@pytest.mark.parametrize("content", ["this is { not json", "", "\xff\xfe garbage", "[1, 2, 3]", '{"name": "x"}'])
def test_refuses_cards_that_are_not_cards(model_copy, content):
    path = model_copy / "model.json"
    if content.startswith("\xff"):
        path.write_bytes(b"\xff\xfe\x00garbage")
    else:
        path.write_text(content)
    for load in (ModelCard.load, ModelRuntime):
        with pytest.raises(ModelCardError) as ei:
            load(path)
        _one_line_card_error(ei)


def test_refuses_malformed_card(model_copy):
    path = model_copy / "model.json"
    d = json.loads(path.read_text())
    del d["input"]
    path.write_text(json.dumps(d))
    with pytest.raises(ModelCardError) as ei:
        ModelCard.load(path)
    _one_line_card_error(ei)


def test_adaptive_mirror_null_is_read_a_policy_is_refused(model_copy):
    """Older cards carry ``"adaptive_mirror": null`` (still read); a card asking for the dropped policy is refused."""
    path = model_copy / "model.json"
    d = json.loads(path.read_text())
    d["adaptive_mirror"] = None
    assert ModelCard.from_dict(d) == ModelCard.load(default_model_path())
    d["adaptive_mirror"] = {"gender_margin": 0.3, "age_sd": 9.0}
    path.write_text(json.dumps(d))
    for load in (ModelCard.load, ModelRuntime):
        with pytest.raises(ModelCardError) as ei:
            load(path)
        msg = _one_line_card_error(ei)
        assert "adaptive_mirror" in msg and str(path) in msg


def test_missing_card(tmp_path):
    with pytest.raises(ModelCardError) as ei:
        ModelCard.load(tmp_path / "nope.json")
    assert "not found" in _one_line_card_error(ei)


# -- post-processing -------------------------------------------------------------------------------------------


def test_softmax():
    x = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, -1000.0]])
    p = softmax(x)
    np.testing.assert_allclose(p.sum(-1), 1.0)
    np.testing.assert_allclose(p[1], [0.5, 0.5, 0.0], atol=1e-12)
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(p[0], e / e.sum())
    # a higher temperature flattens the distribution
    assert softmax(x[0], temperature=10.0).max() < p[0].max()


def test_group_probabilities_sum_to_one():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(101), size=20)
    g = group_probabilities(probs, 0)
    assert g.shape == (20, len(ADIENCE_GROUPS))
    np.testing.assert_allclose(g.sum(-1), 1.0, atol=1e-9)
    assert (g >= 0).all()


def _one_hot(year: int, n: int = 101) -> np.ndarray:
    p = np.zeros(n)
    p[year] = 1.0
    return p


@pytest.mark.parametrize(
    "year, group",
    [
        (30, "25-32"),
        (0, "0-2"),
        (13, "8-12"),  # 1 from 12, 2 from 15
        (14, "15-20"),
        (22, "15-20"),  # 2 from 20, 3 from 25
        (23, "25-32"),
        (57, "60+"),
        (100, "60+"),
    ],
)
def test_group_of_concentrated_distribution(year, group):
    g = group_probabilities(_one_hot(year), 0)
    assert ADIENCE_LABELS[int(np.argmax(g))] == group
    assert g.max() == pytest.approx(1.0)


def test_group_probabilities_agree_with_eval_metrics():
    """Every whole year (gap years and their ties included) goes to the group evaluation uses."""
    from agegender.eval.metrics import age_to_group

    eye = np.eye(101)
    owners = np.argmax(group_probabilities(eye, 0), axis=-1)
    np.testing.assert_array_equal(owners, age_to_group(np.arange(101)))
    # every group owns at least its own years
    for j, (lo, hi) in enumerate(ADIENCE_GROUPS):
        assert (owners[lo : hi + 1] == j).all()


def test_group_probabilities_with_age_min_offset():
    # years 20..39; all mass on 30
    p = np.zeros(20)
    p[10] = 1.0
    g = group_probabilities(p, 20)
    assert ADIENCE_LABELS[int(np.argmax(g))] == "25-32"


def test_quantile_uniform_0_100():
    # 101 whole years, each owning [y - 0.5, y + 0.5): the q-quantile is -0.5 + 101 q
    p = np.full(101, 1 / 101)
    assert quantile(p, 0.5, 0) == pytest.approx(50.0)
    assert quantile(p, 0.1, 0) == pytest.approx(9.6)
    assert quantile(p, 0.9, 0) == pytest.approx(90.4)
    assert quantile(p, 0.25, 0) == pytest.approx(24.75)


def test_quantile_uniform_with_offset_and_batch():
    # ten years 20..29: the q-quantile is 19.5 + 10 q
    p = np.full((3, 10), 0.1)
    np.testing.assert_allclose(quantile(p, 0.5, 20), [24.5] * 3)
    np.testing.assert_allclose(quantile(p, 0.25, 20), [22.0] * 3)
    np.testing.assert_allclose(quantile(p, 0.05, 20), [20.0] * 3)


def test_quantile_point_mass():
    p = _one_hot(42)
    lo, hi = quantile(p, 0.1, 0), quantile(p, 0.9, 0)
    assert 41.5 <= lo <= hi <= 42.5
    assert lo == pytest.approx(41.6) and hi == pytest.approx(42.4)


def test_decode_ranges(card):
    rng = np.random.default_rng(3)
    n_years = card.age_max - card.age_min + 1
    gl = rng.normal(0, 3, (16, 2))
    al = rng.normal(0, 3, (16, n_years))
    al[0] = -50.0
    al[0, 30 - card.age_min] = 50.0  # very sure: 30 years old
    out = decode(gl, al, card)
    assert len(out) == 16
    for r in out:
        assert 0.0 <= r.p_female <= 1.0
        assert r.gender == ("female" if r.p_female >= 0.5 else "male")
        assert 0.5 <= r.gender_probability <= 1.0
        assert card.age_min <= r.age_low <= r.age_high <= card.age_max
        assert card.age_min <= r.age <= card.age_max
        assert r.age_group in ADIENCE_LABELS
        assert sum(r.age_group_probs.values()) == pytest.approx(1.0)
        assert r.age_group == age_group_of(r.age)  # the group shown holds the age shown (or is the nearest)
    assert out[0].age == pytest.approx(30.0, abs=0.01)
    assert out[0].age_group == "25-32"
    assert out[0].age_low <= 30.0 <= out[0].age_high


def test_decode_unimodal_interval_contains_age(card):
    """A bell-shaped age distribution: the reported age lies inside the reported interval."""
    years = np.arange(card.age_min, card.age_max + 1, dtype=np.float64)
    for mu, sigma in [(5, 2), (30, 6), (70, 10), (95, 8)]:
        logits = -0.5 * ((years - mu) / sigma) ** 2
        r = decode(np.zeros((1, 2)), logits[None], card)[0]
        assert r.age_low <= r.age <= r.age_high, (mu, sigma, r)
        assert r.p_female == pytest.approx(0.5)


def test_decode_interval_always_contains_age(card):
    n_years = card.age_max - card.age_min + 1
    p = np.full(n_years, 1e-9)
    p[52 - card.age_min] = 0.92  # a sharp peak at 52 ...
    p[2 - card.age_min] = 0.08  # ... and a small second mode at 2
    r = decode(np.zeros((1, 2)), card.age_temperature * np.log(p)[None], card)[0]  # undo the calibration
    # mean = 48.0, but q10 = 51.5 + (0.10 - 0.08) / 0.92 = 51.52
    assert r.age_low <= r.age <= r.age_high
