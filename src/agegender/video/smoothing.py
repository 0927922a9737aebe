"""Per-track evidence: a track's gender and age settle as its frames add up, instead of flickering.

Each frame on which a face is detected adds the model's calibrated log-probabilities
(:meth:`agegender.Predictor.calibrate`: gender, and the whole distribution over years of age) to its
track, weighted by how much that frame is worth: the detector's confidence times the face's size
relative to the model's input (a 56-pixel face counts half as much as a 112-pixel one), halved again
when the face is cut by the frame's edge. The track's label is the normalised weighted sum, a
logarithmic opinion pool, decoded as one frame's would be (:meth:`agegender.Predictor.decode`)::

    log p_track(y) = sum_t w_t log p_t(y) / sum_t w_t   (then renormalised)

Its decision is the decision of the summed evidence (dividing by the total weight does not move the
argmax or the sign of the gender log-odds), but, unlike a plain sum, it does not grow more confident with
every frame: consecutive frames of one face are nearly the same picture, not independent witnesses, so
the interval stays that of a typical frame instead of shrinking to nothing.
"""

from __future__ import annotations

import numpy as np

from ..postprocess import log_softmax


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
        return log_softmax(self._gender / self.weight), log_softmax(self._age / self.weight)
