"""ONNX Runtime session for an age/gender model described by a :class:`ModelCard`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .card import ModelCard, sha256_file
from .errors import ModelCardError

log = logging.getLogger(__name__)

DEFAULT_CARD = "model.json"


def default_model_path() -> Path:
    """The card of the model shipped inside the package."""
    return Path(str(resources.files("agegender") / "assets" / DEFAULT_CARD))


def builtin_models() -> dict[str, Path]:
    """Models shipped in the package, by name ("default" is ``model.json``)."""
    folder = default_model_path().parent
    out = {"default": default_model_path()} if default_model_path().exists() else {}
    for card in sorted(folder.glob("*.json")):
        if card.name != DEFAULT_CARD:
            out[card.stem] = card
    return out


def resolve_card_path(model: str | Path | None) -> Path:
    """Accept a built-in model name, a card (.json), an ONNX file with its card beside it, a folder, or None."""
    if model is None:
        return default_model_path()
    if isinstance(model, str) and "/" not in model and not model.endswith((".json", ".onnx")):
        named = builtin_models()
        if model in named:
            return named[model]
    p = Path(model)
    if p.is_dir():
        p = p / DEFAULT_CARD
    elif p.suffix.lower() == ".onnx":
        p = p.with_suffix(".json")
    return p


def cpu_session(model: str | bytes, threads: int = 0, spin: bool = False):
    """An ONNX Runtime CPU session with ``threads`` intra-op threads (0: ONNX Runtime decides).

    ``spin=False`` stops idle pool threads from busy-waiting: the pipeline runs detection in worker
    threads next to the model, and spinning threads would take their cores (measured: about 10 %
    faster end to end on 2 cores; ``benchmarks/speed.py``).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


@dataclass
class RawOutputs:
    gender_logits: np.ndarray
    age_logits: np.ndarray
    attention: np.ndarray | None


class ModelRuntime:
    """Loads and verifies a model, then runs batches of preprocessed crops through it."""

    def __init__(self, model: str | Path | None = None, threads: int = 0, verify: bool = True) -> None:
        card_path = resolve_card_path(model)
        self.card = ModelCard.load(card_path)
        weights = card_path.parent / self.card.weights_file
        if not weights.is_file():
            raise ModelCardError(f"model weights not found: {weights}")
        if verify:
            digest = sha256_file(weights)
            if digest != self.card.sha256:
                raise ModelCardError(
                    f"{weights}: sha256 {digest[:12]}… does not match the card's {self.card.sha256[:12]}… "
                    "(corrupt or replaced weights)"
                )
        try:
            self.session = cpu_session(str(weights), threads)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelCardError(f"{weights}: ONNX Runtime cannot load it ({str(exc).splitlines()[0]})") from exc
        names = {o.name for o in self.session.get_outputs()}
        o = self.card.outputs
        for required in (o.gender_logits, o.age_logits):
            if required not in names:
                raise ModelCardError(f"{weights}: output {required!r} named by the card is missing")
        self._outputs = [o.gender_logits, o.age_logits] + ([o.attention] if o.attention in names else [])
        self.path = weights

    def run(self, batch: np.ndarray) -> RawOutputs:
        res = self.session.run(self._outputs, {self.card.input.name: batch})
        return RawOutputs(res[0], res[1], res[2] if len(res) > 2 else None)
