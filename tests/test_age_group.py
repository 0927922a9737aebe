"""The age group shown with an age is the group that age falls in (or, in one of Adience's gaps, the
nearest group, and then named so): on synthetic distributions and on real predictions."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from agegender.card import ModelCard
from agegender.eval.metrics import ADIENCE8, age_to_group
from agegender.postprocess import decode, group_probabilities
from agegender.runtime import default_model_path
from agegender.types import ADIENCE_GROUPS, ADIENCE_LABELS, age_group_of, group_holds, group_text, whole_years


@pytest.fixture(scope="module")
def card() -> ModelCard:
    return ModelCard.load(default_model_path())


def test_rule_is_the_one_evaluation_scores_with():
    ages = np.round(np.arange(0.0, 100.01, 0.05), 2)
    expected = [ADIENCE_LABELS[i] for i in age_to_group(ages, ADIENCE8)]
    assert [age_group_of(float(a)) for a in ages] == expected


@pytest.mark.parametrize(("age", "group", "shown"), [
    (30.0, "25-32", "group 25-32"), (32.4, "25-32", "group 25-32"), (32.5, "25-32", "nearest group 25-32"),
    (37.6, "38-43", "group 38-43"), (51.5, "48-53", "group 48-53"), (57.1, "60+", "nearest group 60+"),
    (55.0, "48-53", "nearest group 48-53"), (35.0, "25-32", "nearest group 25-32"), (99.7, "60+", "group 60+"),
    (0.2, "0-2", "group 0-2"), (3.0, "0-2", "nearest group 0-2"),
])
def test_issue_examples_and_gaps(age, group, shown):
    assert age_group_of(age) == group
    assert group_text(age, group) == shown
    assert group_holds(group, age) == (not shown.startswith("nearest"))


def test_group_never_contradicts_the_age_on_synthetic_distributions(card):
    """Wide, narrow and two-peaked distributions: the group holds the age, or is the nearest; the
    probabilities are those of the distribution, unchanged."""
    rng = np.random.default_rng(11)
    n_years = card.age_max - card.age_min + 1
    years = np.arange(card.age_min, card.age_max + 1, dtype=np.float64)
    logits = []
    for _ in range(300):
        kind = rng.integers(3)
        if kind == 0:  # one peak, any width
            logits.append(-0.5 * ((years - rng.uniform(0, 95)) / rng.uniform(1, 20)) ** 2)
        elif kind == 1:  # two peaks: the most probable group is often far from the mean
            a, b = rng.uniform(0, 95, 2)
            p = np.exp(-0.5 * ((years - a) / 3) ** 2) + rng.uniform(0.3, 1) * np.exp(-0.5 * ((years - b) / 3) ** 2)
            logits.append(np.log(p + 1e-12))
        else:
            logits.append(rng.normal(0, 2, n_years))
    age_logits = np.asarray(logits) * card.age_temperature  # decode divides by the temperature
    out = decode(rng.normal(0, 2, (len(logits), 2)), age_logits, card)
    probs = group_probabilities(np.exp(age_logits / card.age_temperature) /
                                np.exp(age_logits / card.age_temperature).sum(1, keepdims=True), card.age_min)
    differs = 0
    for r, gp in zip(out, probs):
        assert r.age_group == age_group_of(r.age)
        lo, hi = ADIENCE_GROUPS[ADIENCE_LABELS.index(r.age_group)]
        y = whole_years(r.age)
        if not lo <= y <= hi:  # only in a gap, and then no group is nearer
            assert all(not a <= y <= b for a, b in ADIENCE_GROUPS)
            assert max(lo - y, y - hi) <= min(max(a - y, y - b) for a, b in ADIENCE_GROUPS)
        assert list(r.age_group_probs.values()) == pytest.approx(list(gp), abs=1e-9)
        differs += r.age_group != max(r.age_group_probs, key=r.age_group_probs.get)
    assert differs > 10  # the old rule (most probable group) would have contradicted these


def test_real_predictions_say_what_they_show(predictor, astronaut, coffee):
    """Real faces at many sizes and crops (aligned mode gives wide, uncertain distributions): the text of
    every face names a group that holds its age, or says 'nearest group'."""
    crops = []
    img = Image.fromarray(np.ascontiguousarray(astronaut))
    for box in [(178, 56, 273, 177), (150, 30, 300, 210), (120, 0, 330, 260), (200, 80, 260, 150),
                (0, 0, 512, 512), (160, 100, 300, 300)]:
        for side in (40, 112, 224):
            crops.append(np.asarray(img.crop(box).resize((side, side), Image.BILINEAR)))
    crops.append(np.asarray(coffee)[100:300, 200:400])
    preds = predictor.predict_many(crops, aligned=True) + [predictor.predict(astronaut)]
    faces = [f for p in preds for f in p.faces]
    assert len(faces) == len(crops) + 1
    for f in faces:
        text = str(f)
        m = re.search(r"age (\d+) \[\d+-\d+\], (nearest )?group (\S+) at", text)
        assert m, text
        shown_age, nearest, group = int(m[1]), bool(m[2]), m[3]
        lo, hi = ADIENCE_GROUPS[ADIENCE_LABELS.index(group)]
        assert nearest != (lo <= shown_age <= hi), text
        assert group == f.age_group == age_group_of(f.age) and f.group_text in text
