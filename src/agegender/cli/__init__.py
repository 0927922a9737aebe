"""The ``agegender`` command line: one module per command group, each with ``register(subparsers)``.

Parsing only: the work is done by library functions. Heavy imports happen inside the commands. Every
error is one line on standard error (``--debug``, before or after the command, shows the traceback):
exit code 2 for bad usage (checked at parsing, before any work: :mod:`agegender.cli.common`), 1 for
inputs or runs that failed.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import logging
import os
import sys

from .. import __version__
from .common import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, Parser, UsageError

#: (module, registering function) in help order: the commands for users first, then research and training
COMMANDS = (("predict", "register"), ("serve", "register"), ("batch", "register"), ("video", "register"),
            ("predict", "register_info"), ("training", "register"))
DEBUG_HELP = "show tracebacks and debug logs"
#: commands that run the inference pipeline, which spreads its own work over the cores: numpy's BLAS gets one
#: thread there (OpenBLAS would otherwise start a thread per core when numpy is imported, for nothing)
INFERENCE_COMMANDS = ("predict", "batch", "video", "serve", "info")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="agegender", description="Gender and age of every face in your photos, offline.",
               epilog="Commands after 'info' are for research and training (most need the train extra).")
    p.add_argument("--version", action="version", version=f"agegender {__version__}")
    p.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for module, function in COMMANDS:
        getattr(importlib.import_module(f"{__name__}.{module}"), function)(sub)
    for command in sub.choices.values():  # --debug also after the command; SUPPRESS keeps one given before it
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return p


def _error(message: str, code: int) -> int:
    print(f"agegender: error: {message}", file=sys.stderr)
    return code


def _one_blas_thread(command: str | None) -> None:
    """For the inference commands, ask numpy's BLAS for one thread (unless the user chose), before numpy loads."""
    if command in INFERENCE_COMMANDS and "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _end_at_exit(code: int) -> None:
    """Run at interpreter exit (registered last, so it runs first): flush the standard streams and the log
    handlers, then end the process with ``code`` without tearing the interpreter down (unloading numpy and
    ONNX Runtime and freeing every object costs more CPU than a short ``predict`` run's model load)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more can be written anyway
            stream.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """The command line; ``argv`` None: this process's arguments (then a finished ``predict`` also ends the
    process without the interpreter's teardown, :func:`_end_at_exit`)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    _one_blas_thread(getattr(args, "command", None))
    code = _run(parser, args)
    if argv is None and getattr(args, "command", None) == "predict":
        atexit.register(_end_at_exit, code)
    return code


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from ..errors import AgeGenderError

    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if not args.debug:
        logging.getLogger("agegender.predictor").setLevel(logging.ERROR)  # the CLI prints errors itself
    try:
        return args.func(args)
    except UsageError as exc:
        return _error(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except AgeGenderError as exc:
        if args.debug:
            raise
        return _error(str(exc), EXIT_USAGE if "not found" in str(exc) else EXIT_SOME_FAILED)
    except OSError as exc:  # a disk that is full, a file that vanished: run-time, one line
        if args.debug:
            raise
        return _error(str(exc), EXIT_SOME_FAILED)
    except Exception as exc:  # a bug: still one line; --debug shows where
        if args.debug:
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        return _error(f"unexpected {type(exc).__name__}: {first} (rerun with --debug for the traceback)",
                      EXIT_SOME_FAILED)


__all__ = ["EXIT_OK", "EXIT_SOME_FAILED", "EXIT_USAGE", "UsageError", "build_parser", "main"]
