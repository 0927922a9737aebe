"""HTTP errors of the service: one JSON shape for every error, never a traceback."""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("agegender.serve")


class ApiError(Exception):
    """An error answered as ``{"error": {"status", "code", "message"}}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    @property
    def code(self) -> str:
        return code_for(self.status)


#: stable codes (Python's own phrases changed in 3.13: 413 "Content Too Large", 422 "Unprocessable Content")
CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
         413: "payload_too_large", 415: "unsupported_media_type", 422: "unprocessable_entity",
         500: "internal_error", 503: "service_unavailable", 504: "gateway_timeout"}


def code_for(status: int) -> str:
    if status in CODES:
        return CODES[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def error_body(status: int, message: str) -> dict:
    return {"error": {"status": status, "code": code_for(status), "message": message}}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


def install_handlers(app: FastAPI) -> None:
    """Route every error (ours, FastAPI's validation, Starlette's 404/405, anything unexpected) to JSON."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        log.debug("%s %s -> %d %s", request.method, request.url.path, exc.status, exc.code)
        return error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        if errs:
            e = errs[0]
            where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "path", "body"))
            msg = f"{where}: {e.get('msg', 'invalid')}" if where else str(e.get("msg", "invalid request"))
        else:
            msg = "invalid request"
        return error_response(422, msg)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else code_for(exc.status_code)
        return error_response(exc.status_code, detail, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # a bug of ours, not bad input: log it (no request content) and answer without details
        log.error("%s %s: internal error (%s)", request.method, request.url.path, type(exc).__name__,
                  exc_info=exc)
        return error_response(500, "internal error")
