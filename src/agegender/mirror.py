"""The mirror pass: each face also run mirrored and the two predictions averaged, for every face (``tta``) or,
for models whose card asks for it (``adaptive_mirror``), only for the faces where it can change the answer."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from .card import AdaptiveMirror, ModelCard


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def mean_log_probs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log of the mean of two softmax distributions (rows), as the exported ensembles average."""
    return np.log(0.5 * (_softmax(a) + _softmax(b)) + 1e-12).astype(np.float32)


def uncertain(gender_logits: np.ndarray, age_logits: np.ndarray, policy: AdaptiveMirror) -> np.ndarray:
    """Rows whose raw (uncalibrated) female probability lies strictly inside
    (``gender_margin``, 1 - ``gender_margin``), or whose raw age distribution has a standard deviation
    above ``age_sd`` years."""
    pf = _softmax(gender_logits.astype(np.float64))[:, 1]
    pa = _softmax(age_logits.astype(np.float64))
    years = np.arange(pa.shape[1], dtype=np.float64)
    mean = pa @ years
    sd = np.sqrt(np.maximum(pa @ years**2 - mean**2, 0.0))
    return (np.minimum(pf, 1.0 - pf) > policy.gender_margin) | (sd > policy.age_sd)


def _mirror_rows(card: ModelCard, gender_logits: np.ndarray, age_logits: np.ndarray, tta: bool,
                 adaptive: bool) -> np.ndarray:
    """Which faces get the mirror pass: none when the graph has it, all with ``tta``, else the uncertain
    ones when the card has an ``adaptive_mirror`` policy (and ``adaptive``)."""
    n = len(gender_logits)
    if card.mirror_in_graph:
        return np.zeros(n, bool)
    if tta:
        return np.ones(n, bool)
    if adaptive and card.adaptive_mirror is not None:
        return uncertain(gender_logits, age_logits, card.adaptive_mirror)
    return np.zeros(n, bool)


def run_model(runtime: Any, x: np.ndarray, tta: bool = False, adaptive: bool = True) -> Any:
    """``runtime.run(x)`` (a :class:`agegender.runtime.ModelRuntime`, ``x`` a model input batch, NCHW),
    with the faces that get the mirror pass (see :func:`_mirror_rows`) replaced by the average of the face
    and its mirror image; returns the runtime's outputs (gender and age as log-probabilities where mirrored)."""
    raw = runtime.run(x)
    rows = _mirror_rows(runtime.card, raw.gender_logits, raw.age_logits, tta, adaptive)
    if not rows.any():
        return raw
    m = runtime.run(np.ascontiguousarray(x[rows][..., ::-1]))
    g, a = raw.gender_logits.astype(np.float32), raw.age_logits.astype(np.float32)
    g[rows] = mean_log_probs(raw.gender_logits[rows], m.gender_logits)
    a[rows] = mean_log_probs(raw.age_logits[rows], m.age_logits)
    return replace(raw, gender_logits=g, age_logits=a)
