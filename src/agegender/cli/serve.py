"""``agegender serve``: the web service and web page (FastAPI run by uvicorn; the ``serve`` extra)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from .common import COUNT, EXIT_OK, NON_NEGATIVE, POSITIVE, THREADS, Number, UsageError, install_hint

PORT = Number(int, 0, 65535)


def _check_bind(host: str, port: int) -> None:
    """Fail with one line, before the models load, if the address cannot be listened on (uvicorn would log a
    record and exit later). Binds as uvicorn does: IPv6 for a host with a colon, else IPv4."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except (OSError, UnicodeError, OverflowError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UsageError(f"cannot listen on {host}:{port}: {reason}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..serve.settings import ServeSettings, SettingsError
    except ImportError as exc:
        raise UsageError(f"the web service needs the serve extra ({exc.name} is missing): "
                         f"{install_hint('serve')}") from None
    try:
        settings = ServeSettings.load(
            os.environ, host=args.host, port=args.port, workers=args.workers, queue=args.queue,
            models=tuple(args.model) if args.model else None, threads=args.threads, max_upload_mb=args.max_upload_mb,
            max_request_mb=args.max_request_mb,
            max_pixels=args.max_pixels, max_faces=args.max_faces, max_batch_files=args.max_batch_files,
            timeout_s=args.timeout, cors_origins=tuple(args.cors_origin) if args.cors_origin else None,
        )
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    from ..serve.app import create_app
    from ..serve.engine import load_models

    level = logging.DEBUG if args.debug else logging.INFO
    logging.getLogger("agegender.serve").setLevel(level)
    try:
        models = load_models(settings)  # fail here, with one line, before binding the port
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _check_bind(settings.host, settings.port)
    app = create_app(settings, models)
    print(f"agegender serve: {', '.join(models)} on http://{settings.host}:{settings.port}/ "
          f"({settings.workers} workers, queue {settings.queue}"
          f"{', API key required' if settings.api_key else ''})", file=sys.stderr)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="debug" if args.debug else "info",
                access_log=not args.no_access_log, server_header=False, proxy_headers=False,
                limit_concurrency=settings.capacity + 32, timeout_graceful_shutdown=5)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    sv = sub.add_parser(
        "serve", help="web service and web page (http://127.0.0.1:8000/)",
        description="Serve the HTTP API (/v1/predict, /v1/predict/batch, /v1/models, /healthz, /readyz, /docs) "
                    "and the web page at /. Each option can also be set with the environment variable shown "
                    "(flags win). AGEGENDER_API_KEY, if set, makes /v1/* require 'Authorization: Bearer KEY'.",
    )
    sv.add_argument("--host", help="address to bind [AGEGENDER_HOST; default 127.0.0.1, this machine only]")
    sv.add_argument("--port", type=PORT, help="[AGEGENDER_PORT; default 8000]")
    sv.add_argument("--workers", type=COUNT, metavar="N",
                    help="inference worker threads, requests computed at once [AGEGENDER_WORKERS; default: cores, "
                         "at most 4]")
    sv.add_argument("--queue", type=NON_NEGATIVE, metavar="N",
                    help="requests that may wait for a worker; more get 503 + Retry-After [AGEGENDER_QUEUE; 32]")
    sv.add_argument("--model", action="append", metavar="NAME",
                    help="model to load: a shipped name (agegender info --list), a card or an ONNX file; repeat to "
                         "load several, the first is the default [AGEGENDER_MODEL, comma-separated; default]")
    sv.add_argument("--threads", type=THREADS, metavar="N",
                    help="ONNX Runtime threads per request (0: automatic) [AGEGENDER_THREADS; 1]")
    sv.add_argument("--max-upload-mb", type=POSITIVE, metavar="MB",
                    help="largest image file [AGEGENDER_MAX_UPLOAD_MB; 40]")
    sv.add_argument("--max-request-mb", type=POSITIVE, metavar="MB",
                    help="largest request body, a whole batch [AGEGENDER_MAX_REQUEST_MB; 50]")
    sv.add_argument("--max-pixels", type=COUNT, metavar="N",
                    help="largest image in pixels, read from the header before decoding; large JPEGs are decoded "
                         "reduced [AGEGENDER_MAX_PIXELS; 100e6]")
    sv.add_argument("--max-faces", type=COUNT, metavar="N", help="most faces per image [AGEGENDER_MAX_FACES; 50]")
    sv.add_argument("--max-batch-files", type=COUNT, metavar="N",
                    help="most files per batch request [AGEGENDER_MAX_BATCH_FILES; 16]")
    sv.add_argument("--timeout", type=POSITIVE, metavar="S", help="per-request time limit [AGEGENDER_TIMEOUT; 30]")
    sv.add_argument("--cors-origin", action="append", metavar="ORIGIN",
                    help="allow this origin cross-site (repeatable) [AGEGENDER_CORS_ORIGINS, comma-separated; "
                         "default: CORS off]")
    sv.add_argument("--no-access-log", action="store_true", help="do not log one line per request")
    sv.set_defaults(func=cmd_serve)
