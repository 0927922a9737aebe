"""``agegender serve``: the web service and web page (FastAPI run by uvicorn; the ``serve`` extra)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from .common import EXIT_OK, UsageError


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..serve.settings import ServeSettings, SettingsError
    except ImportError as exc:
        raise UsageError(f"the web service needs the serve extra: pip install 'agegender[serve]' ({exc.name})"
                         ) from None
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
    sv.add_argument("--port", type=int, help="[AGEGENDER_PORT; default 8000]")
    sv.add_argument("--workers", type=int, metavar="N",
                    help="inference worker threads, requests computed at once [AGEGENDER_WORKERS; default: cores, "
                         "at most 4]")
    sv.add_argument("--queue", type=int, metavar="N",
                    help="requests that may wait for a worker; more get 503 + Retry-After [AGEGENDER_QUEUE; 32]")
    sv.add_argument("--model", action="append", metavar="NAME",
                    help="model to load: a shipped name (agegender info --list), a card or an ONNX file; repeat to "
                         "load several, the first is the default [AGEGENDER_MODEL, comma-separated; default]")
    sv.add_argument("--threads", type=int, metavar="N",
                    help="ONNX Runtime threads per request (0: automatic) [AGEGENDER_THREADS; 1]")
    sv.add_argument("--max-upload-mb", type=float, metavar="MB",
                    help="largest image file [AGEGENDER_MAX_UPLOAD_MB; 10]")
    sv.add_argument("--max-request-mb", type=float, metavar="MB",
                    help="largest request body, a whole batch [AGEGENDER_MAX_REQUEST_MB; 50]")
    sv.add_argument("--max-pixels", type=int, metavar="N", help="largest image in pixels [AGEGENDER_MAX_PIXELS; 40e6]")
    sv.add_argument("--max-faces", type=int, metavar="N", help="most faces per image [AGEGENDER_MAX_FACES; 50]")
    sv.add_argument("--max-batch-files", type=int, metavar="N",
                    help="most files per batch request [AGEGENDER_MAX_BATCH_FILES; 16]")
    sv.add_argument("--timeout", type=float, metavar="S", help="per-request time limit [AGEGENDER_TIMEOUT; 30]")
    sv.add_argument("--cors-origin", action="append", metavar="ORIGIN",
                    help="allow this origin cross-site (repeatable) [AGEGENDER_CORS_ORIGINS, comma-separated; "
                         "default: CORS off]")
    sv.add_argument("--no-access-log", action="store_true", help="do not log one line per request")
    sv.set_defaults(func=cmd_serve)
