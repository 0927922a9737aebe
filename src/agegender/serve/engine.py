"""The models the service loaded at start-up and the work one request does on a worker thread.

Thin over the library: ``uploads.decode_upload`` (a large JPEG is decoded reduced) -> ``Predictor.predict``
-> ``annotate.draw_faces`` / ``annotate.overlay_heatmap`` (the attention map is an output of the ONNX graph:
no PyTorch). Faces are reported in the full-size photo's pixels.
"""

from __future__ import annotations

import base64
import io
import logging
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..annotate import draw_faces, overlay_heatmap
from ..predictor import Predictor
from ..types import Face, Prediction
from .errors import ApiError
from .schemas import BatchItem, ErrorDetail, FaceOut, ModelRef, PredictionOut
from .settings import ServeSettings
from .uploads import Upload, check_image, decode_upload

log = logging.getLogger("agegender.serve")


@dataclass(frozen=True)
class PredictOptions:
    max_faces: int | None = None
    aligned: bool = False
    annotate: bool = False
    explain: bool = False


@dataclass
class LoadedModel:
    key: str
    predictor: Predictor

    @property
    def ref(self) -> ModelRef:
        return ModelRef.of(self.key, self.predictor.card)

    @property
    def has_attention(self) -> bool:
        return self.predictor.has_attention


def _key(spec: str, predictor: Predictor) -> str:
    """The name clients use: a shipped model's name as given, else the card's name."""
    from ..runtime import builtin_models

    return spec if spec in builtin_models() else predictor.card.name


def load_models(settings: ServeSettings) -> dict[str, LoadedModel]:
    """Load, verify and warm up every model once (the first is the default). Raises ``ModelCardError``."""
    models: dict[str, LoadedModel] = {}
    detector = None
    for spec in settings.models:
        p = Predictor(model=None if spec == "default" else spec, detector=detector, threads=settings.threads,
                      workers=1, max_faces=settings.max_faces)
        p.card  # noqa: B018 - load and verify the weights now
        detector = p.detector
        key = _key(spec, p)
        if key in models:
            raise ValueError(f"model {key!r} is listed twice")
        t0 = time.perf_counter()
        p.predict(np.zeros((64, 64, 3), np.uint8))  # creates the detector's session
        p.predict_crops(np.zeros((1, p.card.input.size, p.card.input.size, 3), np.uint8))
        log.info("model %s (%s %s) ready in %.2f s", key, p.card.name, p.card.version, time.perf_counter() - t0)
        models[key] = LoadedModel(key, p)
    return models


def _data_url(img: Image.Image, fmt: str) -> str:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    mime = "image/jpeg" if fmt == "JPEG" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def _attention_overlay(model: LoadedModel, image: np.ndarray, face: Face) -> str | None:
    if face.attention is None:
        return None
    over = overlay_heatmap(model.predictor.crop_of(image, face), face.attention)
    return _data_url(over.resize((over.width * 2, over.height * 2), Image.BICUBIC), "PNG")


def predict_upload(model: LoadedModel, upload: Upload, opts: PredictOptions, settings: ServeSettings,
                   source: str) -> PredictionOut:
    """One image: checks (413/415/422), decoding, prediction, optional drawings. Runs on a worker thread."""
    check_image(upload, settings.max_upload_bytes, settings.max_pixels)
    image, scale, (w, h) = decode_upload(upload, settings.max_pixels)  # a phone photo comes back reduced
    pred = model.predictor.predict(image, aligned=opts.aligned)
    faces = pred.faces[: opts.max_faces] if opts.max_faces else pred.faces
    full = tuple(f.scaled(1 / scale) for f in faces)  # boxes and landmarks in the full-size photo's pixels
    overlays = [_attention_overlay(model, image, f) if opts.explain else None for f in faces]
    faces_out = [FaceOut.of(f, over) for f, over in zip(full, overlays)]
    annotated = _data_url(draw_faces(image, faces), "JPEG") if opts.annotate else None
    pred = Prediction(source=source, width=w, height=h, faces=full)
    return PredictionOut.of(pred, model.ref, faces_out, annotated)


def predict_batch(model: LoadedModel, uploads: list[Upload], opts: PredictOptions, settings: ServeSettings,
                  deadline: float) -> list[BatchItem]:
    """Each file on its own (one decoded image in memory at a time); bad files reported in place."""
    items = []
    for i, up in enumerate(uploads):
        if time.monotonic() > deadline:  # the request has timed out: the answer is a 504, stop working
            break
        name = up.filename or f"file {i}"
        try:
            pred = predict_upload(model, up, opts, settings, source=name)
            items.append(BatchItem(index=i, filename=name, status=200, prediction=pred))
        except ApiError as exc:
            items.append(BatchItem(index=i, filename=name, status=exc.status,
                                   error=ErrorDetail(status=exc.status, code=exc.code, message=exc.message)))
    return items
