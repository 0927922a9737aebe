"""The mirror pass: each face also run mirrored and the two predictions averaged, for every face (``tta``) or,
for models whose card asks for it (``adaptive_mirror``), only for the faces where it can change the answer."""

from __future__ import annotations

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


def mirror_rows(card: ModelCard, gender_logits: np.ndarray, age_logits: np.ndarray, tta: bool,
                adaptive: bool = True) -> np.ndarray:
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


def with_mirror(runtime: Any, x: np.ndarray, gender_logits: np.ndarray, age_logits: np.ndarray,
                rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The outputs with ``rows`` replaced by the average of the face and its mirror (``runtime``: a
    :class:`agegender.runtime.ModelRuntime`; ``x``: the model input batch, NCHW, that gave the outputs)."""
    if not rows.any():
        return gender_logits, age_logits
    m = runtime.run(np.ascontiguousarray(x[rows][..., ::-1]))
    mg, ma = m.gender_logits, m.age_logits
    g, a = gender_logits.astype(np.float32), age_logits.astype(np.float32)
    g[rows] = mean_log_probs(gender_logits[rows], mg)
    a[rows] = mean_log_probs(age_logits[rows], ma)
    return g, a
