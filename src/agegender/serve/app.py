"""The FastAPI app: routes, authentication, CORS, security headers, the web page. Routes stay thin: the
work is in :mod:`.engine`, the limits in :mod:`.limits` and :mod:`.uploads`."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..card import ModelCard
from .engine import LoadedModel, PredictOptions, load_models, predict_batch, predict_upload
from .errors import ApiError, install_handlers
from .limits import InferencePool
from .schemas import BatchItem, BatchOut, ErrorOut, Health, ModelsOut, ModelSummary, PredictionOut
from .settings import ServeSettings
from .uploads import MULTIPART_OVERHEAD, Upload, file_parts, is_multipart, parse_multipart, read_body

log = logging.getLogger("agegender.serve")

STATIC_DIR = Path(str(resources.files("agegender") / "serve" / "static"))

CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; "
       "script-src 'self'; style-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")

_ERRORS = {s: {"model": ErrorOut} for s in (400, 401, 404, 413, 415, 422, 503, 504)}

_UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "string", "format": "binary"}}, "required": ["file"]}},
    "image/*": {"schema": {"type": "string", "format": "binary"}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
}}}
_BATCH_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}, "required": ["files"]}},
}}}


@dataclass
class ServeState:
    settings: ServeSettings
    pool: InferencePool
    models: dict[str, LoadedModel] = field(default_factory=dict)

    def model(self, key: str | None) -> LoadedModel:
        if not self.models:
            raise ApiError(503, "models are still loading", headers={"Retry-After": "5"})
        if key is None:
            return next(iter(self.models.values()))
        if key not in self.models:
            raise ApiError(404, f"unknown model {key!r}; loaded: {', '.join(self.models)}")
        return self.models[key]


def _state(request: Request) -> ServeState:
    return request.app.state.serve


def _require_key(request: Request) -> None:
    key = _state(request).settings.api_key
    if key is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.get_secret_value().encode()):
        raise ApiError(401, "missing or wrong API key (send 'Authorization: Bearer <key>')",
                       headers={"WWW-Authenticate": "Bearer"})


def _options(
    max_faces: Annotated[int | None, Query(ge=1, le=1000, description="at most this many faces (largest)")] = None,
    aligned: Annotated[bool, Query(description="the image is one already-cropped face (no detection)")] = False,
    annotate: Annotated[bool, Query(description="also return the image with boxes and labels (JPEG data URL)")] = False,
    explain: Annotated[bool, Query(description="also return each face's attention overlay (PNG data URL)")] = False,
) -> PredictOptions:
    return PredictOptions(max_faces=max_faces, aligned=aligned, annotate=annotate, explain=explain)


ModelQuery = Annotated[str | None, Query(description="a loaded model's key (GET /v1/models); default: the first")]
LabelsQuery = Annotated[bool, Query(description="also return where each face's label goes (inside the image, "
                                                "never overlapping another label), as annotated images place them")]


def _predict_one(model: LoadedModel, upload: Upload, opts: PredictOptions, settings: ServeSettings, source: str,
                 labels: bool) -> PredictionOut:
    out = predict_upload(model, upload, opts, settings, source)
    return out.with_labels() if labels else out


def _predict_many(model: LoadedModel, uploads: list[Upload], opts: PredictOptions, settings: ServeSettings,
                  deadline: float, labels: bool) -> list[BatchItem]:
    items = predict_batch(model, uploads, opts, settings, deadline)
    if not labels:
        return items
    return [it if it.prediction is None else it.model_copy(update={"prediction": it.prediction.with_labels()})
            for it in items]


def _api_router() -> APIRouter:
    r = APIRouter(prefix="/v1", dependencies=[Depends(_require_key)], responses={401: {"model": ErrorOut}})

    @r.post("/predict", response_model=PredictionOut, responses=_ERRORS, openapi_extra=_UPLOAD_BODY,
            summary="Faces, gender and age in one image")
    async def predict(request: Request, opts: Annotated[PredictOptions, Depends(_options)],
                      model: ModelQuery = None, labels: LabelsQuery = False) -> PredictionOut:
        """Send the image as multipart/form-data (field `file`) or as the raw request body. The type is
        judged by the content: 415 for a non-image, 422 for a corrupt one, 413 over the size or pixel limit,
        503 (with Retry-After) when the server is full, 504 past the time limit."""
        st = _state(request)
        m = st.model(model)
        s = st.settings
        async with st.pool.slot() as slot:
            ctype = request.headers.get("content-type")
            multipart = is_multipart(ctype)
            limit = s.max_upload_bytes + (MULTIPART_OVERHEAD if multipart else 0)
            body = await read_body(request, min(limit, s.max_request_bytes))
            if multipart:
                files = file_parts(parse_multipart(body, ctype or "", s.max_upload_bytes))
                if not files:
                    raise ApiError(422, "no file in the form: send the image as the field 'file'")
                upload = next((f for f in files if f.field == "file"), files[0])
                source = upload.filename or "upload"
            else:
                upload, source = Upload(field="", filename="", data=body), "upload"
            return await st.pool.run(slot, _predict_one, m, upload, opts, s, source, labels)

    @r.post("/predict/batch", response_model=BatchOut, responses=_ERRORS, openapi_extra=_BATCH_BODY,
            summary="Several images, one result each")
    async def predict_many(request: Request, opts: Annotated[PredictOptions, Depends(_options)],
                           model: ModelQuery = None, labels: LabelsQuery = False) -> BatchOut:
        """multipart/form-data with one or more files (any field names). Bad files are reported in place
        with the status they would have had alone; the others are still processed."""
        st = _state(request)
        m = st.model(model)
        s = st.settings
        async with st.pool.slot() as slot:
            ctype = request.headers.get("content-type")
            if not is_multipart(ctype):
                raise ApiError(415, "send multipart/form-data with one or more files")
            body = await read_body(request, s.max_request_bytes)
            files = file_parts(parse_multipart(body, ctype or "", s.max_upload_bytes))
            if not files:
                raise ApiError(422, "no files in the form")
            if len(files) > s.max_batch_files:
                raise ApiError(413, f"{len(files)} files exceed the limit of {s.max_batch_files} per request")
            items = await st.pool.run(slot, _predict_many, m, files, opts, s, slot.deadline, labels)
            return BatchOut(model=m.ref, results=items)

    @r.get("/models", response_model=ModelsOut, summary="The loaded models")
    async def models(request: Request) -> ModelsOut:
        st = _state(request)
        first = next(iter(st.models), None)
        return ModelsOut(models=[
            ModelSummary(key=k, name=m.predictor.card.name, version=m.predictor.card.version,
                         architecture=m.predictor.card.architecture, attention=m.has_attention, default=k == first)
            for k, m in st.models.items()
        ])

    @r.get("/models/{name}", response_model=ModelCard, responses={404: {"model": ErrorOut}},
           summary="A loaded model's card")
    async def model_card(request: Request, name: str) -> ModelCard:
        """The model card: architecture, preprocessing, calibration, training data and terms, test metrics,
        limitations, sha256 of the weights. `name` is the key or the card's name."""
        st = _state(request)
        for k, m in st.models.items():
            if name in (k, m.predictor.card.name):
                return m.predictor.card
        raise ApiError(404, f"unknown model {name!r}; loaded: {', '.join(st.models)}")

    return r


def create_app(settings: ServeSettings | None = None, models: dict[str, LoadedModel] | None = None) -> FastAPI:
    """The app. ``models`` already loaded (e.g. by the command, to fail before binding) are used as they
    are; otherwise they are loaded at start-up (lifespan), before the first request is served."""
    settings = settings or ServeSettings.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        st: ServeState = app.state.serve
        if not st.models:
            st.models = load_models(settings)
        yield
        st.pool.shutdown()

    app = FastAPI(title="agegender", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Gender and age of every face in a photo, computed on this server, offline. "
                              "Uploads are kept in memory only, never stored or logged.")
    app.state.serve = ServeState(settings, InferencePool(settings.workers, settings.queue, settings.timeout_s),
                                 dict(models or {}))
    install_handlers(app)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # noqa: ANN001, ANN202
        t0 = time.perf_counter()
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        log.debug("%s %s %d %.1f ms", request.method, request.url.path, response.status_code,
                  1000 * (time.perf_counter() - t0))
        return response

    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"], max_age=600)

    app.include_router(_api_router())

    @app.get("/healthz", response_model=Health, summary="Liveness (no API key needed)")
    async def healthz(request: Request) -> Health:
        """Always 200 while the process answers; the loaded models and the load, as /readyz gives them."""
        st = _state(request)
        return Health(status="ok", models=list(st.models), in_flight=st.pool.in_flight, capacity=st.pool.capacity)

    @app.get("/readyz", response_model=Health, responses={503: {"model": Health}},
             summary="Readiness: models loaded and room for a request (no API key needed)")
    async def readyz(request: Request) -> Response:
        st = _state(request)
        status = "loading" if not st.models else "busy" if st.pool.full else "ready"
        body = Health(status=status, models=list(st.models), in_flight=st.pool.in_flight, capacity=st.pool.capacity)
        headers = {"Retry-After": str(st.pool.retry_after())} if status != "ready" else None
        return JSONResponse(body.model_dump(), status_code=200 if status == "ready" else 503, headers=headers)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(STATIC_DIR / "docs.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
