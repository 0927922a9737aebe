"""Network outputs -> gender probability, expected age, age interval and age-group probabilities.

The age group given with a face is the group of its expected age (:func:`agegender.types.age_group_of`:
the group that holds the age in whole years, else the nearest), so the two never contradict each other;
``age_group_probs`` still gives every group's probability, and its most probable group may be another
one when the distribution is wide or has two peaks.
"""

from __future__ import annotations

import numpy as np

from .card import ModelCard
from .types import ADIENCE_GROUPS, ADIENCE_LABELS, AgeGender, age_group_of


def softmax(x: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Probabilities (float64) of scores ``x`` divided by ``temperature``, over the last axis."""
    z = x.astype(np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(x: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Log-probabilities (float64) of scores ``x`` divided by ``temperature``, over the last axis."""
    z = x.astype(np.float64) / temperature
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def group_probabilities(age_probs: np.ndarray, age_min: int, groups=ADIENCE_GROUPS) -> np.ndarray:
    """Sum a per-year distribution into groups; years between groups go to the nearer group.

    Adience's groups leave gaps (3, 7, 13-14, 21-24, 33-37, 44-47, 54-59): each gap year is given to
    the group whose bound is closer (ties to the younger group, as in eval.metrics), so the probabilities sum to 1.
    """
    n_years = age_probs.shape[-1]
    years = np.arange(age_min, age_min + n_years)
    owner = np.empty(n_years, dtype=np.int64)
    for i, y in enumerate(years):
        dists = [0 if lo <= y <= hi else min(abs(y - lo), abs(y - hi)) for lo, hi in groups]
        best = min(dists)
        owner[i] = min(j for j, d in enumerate(dists) if d == best)
    out = np.zeros(age_probs.shape[:-1] + (len(groups),))
    for j in range(len(groups)):
        out[..., j] = age_probs[..., owner == j].sum(-1)
    return out


def quantile(age_probs: np.ndarray, q: float, age_min: int) -> np.ndarray:
    """Age at cumulative probability ``q`` (linear interpolation within the year)."""
    cdf = np.cumsum(age_probs, axis=-1)
    idx = np.clip((cdf < q).sum(-1), 0, age_probs.shape[-1] - 1)
    prev = np.where(idx > 0, np.take_along_axis(cdf, np.maximum(idx - 1, 0)[..., None], -1)[..., 0], 0.0)
    p = np.take_along_axis(age_probs, idx[..., None], -1)[..., 0]
    frac = np.where(p > 0, (q - prev) / np.maximum(p, 1e-12), 0.5)
    return age_min + idx - 0.5 + np.clip(frac, 0, 1)


def decode(gender_logits: np.ndarray, age_logits: np.ndarray, card: ModelCard) -> list[AgeGender]:
    """Calibrated, typed results for a batch."""
    pg = softmax(gender_logits, card.gender_temperature)
    pa = softmax(age_logits, card.age_temperature)
    years = np.arange(card.age_min, card.age_max + 1, dtype=np.float64)
    expected = pa @ years
    lo = quantile(pa, card.interval[0], card.age_min)
    hi = quantile(pa, card.interval[1], card.age_min)
    groups = group_probabilities(pa, card.age_min)
    female = card.gender_labels.index("female")
    out = []
    for i in range(len(pg)):
        p_female = float(pg[i, female])
        gp = {label: float(v) for label, v in zip(ADIENCE_LABELS, groups[i])}
        out.append(
            AgeGender(
                gender="female" if p_female >= 0.5 else "male",
                p_female=p_female,
                age=float(expected[i]),
                # the interval always contains the reported (expected) age, even for two-peaked distributions
                age_low=float(max(card.age_min, min(lo[i], expected[i]))),
                age_high=float(min(card.age_max, max(hi[i], expected[i]))),
                age_group=age_group_of(float(expected[i])),
                age_group_probs=gp,
            )
        )
    return out
