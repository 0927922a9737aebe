"""One worker's work: a list of input keys -> the output rows of each, with one model loaded once.

Used by both engines (a local worker process, a Ray actor). Decoding and detection of the next images
run in ``prep_threads`` threads while the model works on the current faces (``Predictor.iter_predict``).
"""

from __future__ import annotations

import dataclasses
import logging

from ..predictor import Predictor
from ..types import Prediction
from .inputs import is_uri, read_uri
from .rows import InputResult, ModelId, failure, result_of

log = logging.getLogger(__name__)


class PartProcessor:
    """Loads the model and the detector once; :meth:`process` turns keys into rows.

    ``log_failures``: log each failed input's error as a warning here (the local engine's workers); the Ray
    engine's actors do not, its driver logs them where the user sees them.
    """

    def __init__(self, model: str | None = None, threads: int = 1, prep_threads: int = 2, chunk: int = 32,
                 log_failures: bool = True) -> None:
        self.predictor = Predictor(model=model, threads=threads, workers=prep_threads)
        self.model = ModelId.of(self.predictor.card)
        self.predictor.detector  # load now, not on the first image  # noqa: B018
        self.chunk = chunk
        self.log_failures = log_failures

    def process(self, keys: list[str]) -> list[InputResult]:
        """Rows for every key, in order; an input that fails gets one row with its error."""
        try:
            return self._process(keys)
        except Exception as exc:  # a bug or a crash in a library on one input must not lose the others
            log.warning("part of %d inputs failed as a whole (%s); retrying them one by one", len(keys), exc)
            out = []
            for k in keys:
                try:
                    out += self._process([k])
                except Exception as one:  # noqa: BLE001 - recorded as that input's error row
                    out.append(failure(k, f"{k}: {type(one).__name__}: {one}", self.model))
            return out

    def _process(self, keys: list[str]) -> list[InputResult]:
        results: dict[int, InputResult] = {}
        todo: list[tuple[int, str | bytes]] = []
        for i, k in enumerate(keys):
            if is_uri(k):
                try:
                    todo.append((i, read_uri(k)))
                except (OSError, ValueError) as exc:
                    results[i] = failure(k, f"{k}: cannot read ({str(exc).splitlines()[0]})", self.model)
            else:
                todo.append((i, k))
        preds = self.predictor.iter_predict([src for _, src in todo], chunk=self.chunk)
        for (i, _), pred in zip(todo, preds):
            results[i] = result_of(self._named(pred, keys[i]), self.model)
        out = [results[i] for i in range(len(keys))]
        if self.log_failures:
            for r in out:
                if r.failed:
                    log.warning("%s", r.error)
        return out

    @staticmethod
    def _named(pred: Prediction, key: str) -> Prediction:
        """Predictions of bytes read from a URI are named ``<bytes #k>``: give them their URI."""
        if pred.source == key:
            return pred
        error = pred.error.replace(pred.source, key, 1) if pred.error else None
        return dataclasses.replace(pred, source=key, error=error)
