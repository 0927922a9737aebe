"""Temperature scaling fitted on validation outputs (gender and age distributions separately)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..postprocess import log_softmax

_GRID = np.exp(np.linspace(np.log(0.25), np.log(4.0), 241))


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature (grid 0.25-4, log-spaced) minimising the NLL of integer ``targets``."""
    best_t, best = 1.0, np.inf
    rows = np.arange(len(targets))
    for t in _GRID:
        nll = -log_softmax(logits / t)[rows, targets].mean()
        if nll < best:
            best_t, best = float(t), float(nll)
    return best_t


def ece(probs_positive: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of a binary classifier (confidence = max(p, 1 - p))."""
    conf = np.maximum(probs_positive, 1 - probs_positive)
    pred = (probs_positive >= 0.5).astype(int)
    correct = (pred == labels).astype(float)
    edges = np.linspace(0.5, 1.0, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(total)


@dataclass
class Calibration:
    gender_temperature: float
    age_temperature: float
    gender_ece_before: float
    gender_ece_after: float
    age_nll_before: float
    age_nll_after: float

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 5) for k, v in self.__dict__.items()}


def calibrate(gender_logits: np.ndarray, age_logits: np.ndarray, gender: np.ndarray, age: np.ndarray) -> Calibration:
    """Fit both temperatures on validation data (unknown genders = -1 and age < 0 are ignored)."""
    gm = gender >= 0
    tg = fit_temperature(gender_logits[gm], gender[gm])

    def p_female(t: float) -> np.ndarray:
        return np.exp(log_softmax(gender_logits[gm] / t))[:, 1]

    am = age >= 0
    years = np.clip(np.round(age[am]).astype(int), 0, age_logits.shape[1] - 1)
    ta = fit_temperature(age_logits[am], years)
    rows = np.arange(am.sum())
    return Calibration(
        gender_temperature=tg,
        age_temperature=ta,
        gender_ece_before=ece(p_female(1.0), gender[gm]),
        gender_ece_after=ece(p_female(tg), gender[gm]),
        age_nll_before=float(-log_softmax(age_logits[am])[rows, years].mean()),
        age_nll_after=float(-log_softmax(age_logits[am] / ta)[rows, years].mean()),
    )
