"""The mirror pass (``tta``): each face also run mirrored and the two predictions averaged, as the graphs
exported with the mirror pass (``card.mirror_in_graph``) do inside themselves."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from .postprocess import softmax


def mean_log_probs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log of the mean of two softmax distributions (rows), as the exported ensembles average."""
    return np.log(0.5 * (softmax(a) + softmax(b)) + 1e-12).astype(np.float32)


def run_model(runtime: Any, x: np.ndarray, tta: bool = False) -> Any:
    """``runtime.run(x)`` (a :class:`agegender.runtime.ModelRuntime`, ``x`` a model input batch, NCHW); with
    ``tta``, for a graph without the mirror pass of its own, each face averaged with its mirror image (gender
    and age then as log-probabilities)."""
    raw = runtime.run(x)
    if not tta or runtime.card.mirror_in_graph:
        return raw
    m = runtime.run(np.ascontiguousarray(x[..., ::-1]))
    return replace(raw, gender_logits=mean_log_probs(raw.gender_logits, m.gender_logits),
                   age_logits=mean_log_probs(raw.age_logits, m.age_logits))
