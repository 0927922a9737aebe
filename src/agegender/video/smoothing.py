"""Per-track evidence: a track's gender and age settle as its frames add up, instead of flickering.

Each frame on which a face is detected adds the model's calibrated log-probabilities (gender, and the
whole distribution over years of age) to its track, weighted by how much that frame is worth: the
detector's confidence times the face's size relative to the model's input (a 56-pixel face counts half
as much as a 112-pixel one), halved again when the face is cut by the frame's edge. The track's label
is the normalised weighted sum, a logarithmic opinion pool::

    log p_track(y) = sum_t w_t log p_t(y) / sum_t w_t   (then renormalised)

Its decision is the decision of the summed evidence (dividing by the total weight does not move the
argmax or the sign of the gender log-odds), but, unlike a plain sum, it does not grow more confident with
every frame: consecutive frames of one face are nearly the same picture, not independent witnesses, so
the interval stays that of a typical frame instead of shrinking to nothing.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..card import ModelCard
from ..mirror import run_model
from ..postprocess import decode
from ..preprocess import to_input
from ..types import AgeGender


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def plain_card(card: ModelCard) -> ModelCard:
    """The card with unit temperatures: :func:`decode` of calibrated log-probabilities then gives them back."""
    return replace(card, gender_temperature=1.0, age_temperature=1.0)


def predict_log_probs(predictor, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated log-probabilities (gender (N, 2) in the card's label order, age (N, years)) of aligned crops.

    The same model call and the same ``tta`` as :meth:`Predictor.predict_crops`; decoding them with
    :func:`plain_card` gives its results (to rounding).
    """
    card: ModelCard = predictor.card
    if len(crops) == 0:
        return np.zeros((0, 2)), np.zeros((0, card.age_max - card.age_min + 1))
    x = to_input(np.asarray(crops), card.input)
    raw = run_model(predictor.runtime, x, predictor.tta, predictor.adaptive_mirror)
    g, a = raw.gender_logits.astype(np.float64), raw.age_logits.astype(np.float64)
    g, a = _log_softmax(g / card.gender_temperature), _log_softmax(a / card.age_temperature)
    return g, a


def evidence_weight(box, det_score: float, frame_size: tuple[int, int], input_size: int = 112) -> float:
    """How much one frame's prediction counts: confidence x relative face size, halved at the frame edge."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = frame_size
    side = min(x2 - x1, y2 - y1)
    weight = max(float(det_score), 0.0) * float(np.clip(side / input_size, 0.05, 1.0))
    tol = 2.0
    if x1 <= tol or y1 <= tol or x2 >= w - tol or y2 >= h - tol:
        weight *= 0.5
    return weight


class TrackEvidence:
    """The weighted sum of one track's log-probabilities, and the label it gives."""

    def __init__(self) -> None:
        self.weight = 0.0
        self.frames = 0
        self._gender: np.ndarray | None = None
        self._age: np.ndarray | None = None

    def add(self, gender_logp: np.ndarray, age_logp: np.ndarray, weight: float) -> None:
        if weight <= 0:
            return
        g, a = weight * np.asarray(gender_logp, np.float64), weight * np.asarray(age_logp, np.float64)
        self._gender = g if self._gender is None else self._gender + g
        self._age = a if self._age is None else self._age + a
        self.weight += weight
        self.frames += 1

    def pooled(self) -> tuple[np.ndarray, np.ndarray]:
        """The track's log-probabilities (gender, age): the weighted mean of its frames', renormalised."""
        if self._gender is None or self._age is None:
            raise ValueError("no evidence yet")
        return _log_softmax(self._gender / self.weight), _log_softmax(self._age / self.weight)

    def estimate(self, card: ModelCard) -> AgeGender | None:
        """The pooled label, decoded as one frame's would be; ``None`` before any evidence."""
        if self._gender is None:
            return None
        g, a = self.pooled()
        return decode(g[None], a[None], plain_card(card))[0]
