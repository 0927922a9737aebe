"""ONNX Runtime session for an age/gender model described by a :class:`ModelCard`."""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
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


def sample_photo() -> Path:
    """The public-domain sample photo shipped in the package (NASA's portrait of Eileen Collins)."""
    return Path(str(resources.files("agegender") / "assets" / "samples" / "astronaut.png"))


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


#: environment variable naming the folder for ONNX Runtime's saved optimised models ("" or "off": none)
CACHE_ENV = "AGEGENDER_CACHE_DIR"


def cache_dir() -> Path | None:
    """Where optimised models are kept between runs: ``$AGEGENDER_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/agegender`` (``~/.cache/agegender``); ``None`` when turned off (``""``, ``off``, ``0``)."""
    env = os.environ.get(CACHE_ENV)
    if env is not None:
        return None if env.strip().lower() in ("", "0", "off", "none", "false") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "agegender"


def _options(threads: int, spin: bool):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def cached_model_path(cache_key: str) -> Path | None:
    """The saved optimised model for ``cache_key`` (keyed with the ONNX Runtime version), if caching is on."""
    import onnxruntime as ort

    folder = cache_dir()
    if folder is None:
        return None
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in cache_key)
    return folder / f"{safe}-ort{ort.__version__}.onnx"


def _save_optimised(model: str | bytes, target: Path, threads: int, spin: bool) -> bool:
    """Write ONNX Runtime's optimised graph of ``model`` to ``target`` (atomically); False if it cannot.

    Saved at the "extended" level (constant folding, fusions): portable across CPUs, unlike the "all"
    level's layout transforms, which every session applies again when it loads the saved graph (cheaply).
    """
    import onnxruntime as ort

    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        opts = _options(threads, spin)
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        opts.optimized_model_filepath = str(tmp)
        ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
        os.replace(tmp, target)
        return True
    except Exception as exc:  # a read-only home, a full disk, an odd graph: run without the cache
        log.debug("cannot save the optimised model to %s: %s", target, exc)
        tmp.unlink(missing_ok=True)
        return False


def cpu_session(model: str | bytes, threads: int = 0, spin: bool = False, cache_key: str | None = None):
    """An ONNX Runtime CPU session with ``threads`` intra-op threads (0: ONNX Runtime decides).

    ``spin=False`` stops idle pool threads from busy-waiting: the pipeline runs detection in worker
    threads next to the model, and spinning threads would take their cores (measured: about 10 %
    faster end to end on 2 cores; ``benchmarks/speed.py``).

    ``cache_key`` (unique to the model's content): keep ONNX Runtime's optimised graph in
    :func:`cache_dir` and load that on later runs, which skips most of the session's set-up time
    (``docs/speed.md``). Outputs are the same; any trouble with the cache falls back to ``model``.
    """
    import onnxruntime as ort

    def session(src: str | bytes):
        return ort.InferenceSession(src, sess_options=_options(threads, spin), providers=["CPUExecutionProvider"])

    cached = cached_model_path(cache_key) if cache_key else None
    if cached is not None and (cached.is_file() or _save_optimised(model, cached, threads, spin)):
        try:
            return session(str(cached))
        except Exception as exc:  # a truncated or foreign file: ignore it
            log.debug("ignoring the saved optimised model %s: %s", cached, exc)
    return session(model)


@dataclass
class RawOutputs:
    """What the network gives for a batch, before calibration."""

    gender_logits: np.ndarray  # (N, 2) in the card's label order
    age_logits: np.ndarray  # (N, years)
    attention: np.ndarray | None  # (N, 1, h, w) in [0, 1], or None when the graph has no attention output


class ModelRuntime:
    """Loads and verifies a model, then runs batches of preprocessed crops through it."""

    def __init__(self, model: str | Path | None = None, threads: int = 0, verify: bool = True) -> None:
        card_path = resolve_card_path(model)
        self.card = ModelCard.load(card_path)
        weights = card_path.parent / self.card.weights_file
        if not weights.is_file():
            raise ModelCardError(f"model weights not found: {weights}")
        # the saved optimised graph is keyed by the card's digest: only used for verified weights
        key = f"model-{self.card.sha256}-{weights.stat().st_size}" if verify else None
        cached = cached_model_path(key) if key else None
        try:
            if cached is not None and cached.is_file():
                # check the weights' digest on one core while the session loads the saved graph
                with ThreadPoolExecutor(1) as pool:
                    digest = pool.submit(sha256_file, weights)
                    self.session = cpu_session(str(weights), threads, cache_key=key)
                    self._check_digest(weights, digest.result())
            else:
                if verify:
                    self._check_digest(weights, sha256_file(weights))
                self.session = cpu_session(str(weights), threads, cache_key=key)
        except ModelCardError:
            raise
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelCardError(f"{weights}: ONNX Runtime cannot load it ({str(exc).splitlines()[0]})") from exc
        names = {o.name for o in self.session.get_outputs()}
        o = self.card.outputs
        for required in (o.gender_logits, o.age_logits):
            if required not in names:
                raise ModelCardError(f"{weights}: output {required!r} named by the card is missing")
        self._outputs = [o.gender_logits, o.age_logits] + ([o.attention] if o.attention in names else [])
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        if self.card.input.name not in inputs:
            raise ModelCardError(f"{weights}: input {self.card.input.name!r} named by the card is missing")
        channels = inputs[self.card.input.name][1] if len(inputs[self.card.input.name]) == 4 else None
        views = len(self.card.alignment.framings)
        if isinstance(channels, int) and channels != 3 * views:
            raise ModelCardError(f"{weights}: the graph takes {channels} input channels, the card's "
                                 f"{views} view(s) give {3 * views}")
        self.path = weights

    @property
    def has_attention(self) -> bool:
        """Whether the graph gives the attention maps its card names."""
        return len(self._outputs) > 2

    def _check_digest(self, weights: Path, digest: str) -> None:
        if digest != self.card.sha256:
            raise ModelCardError(
                f"{weights}: sha256 {digest[:12]}… does not match the card's {self.card.sha256[:12]}… "
                "(corrupt or replaced weights)"
            )

    def run(self, batch: np.ndarray) -> RawOutputs:
        res = self.session.run(self._outputs, {self.card.input.name: batch})
        return RawOutputs(res[0], res[1], res[2] if len(res) > 2 else None)
