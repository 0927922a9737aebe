"""The ``agegender`` command line: one module per command group, each with ``register(subparsers)``.

Parsing only: the work is done by library functions. Heavy imports happen inside the commands.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .. import __version__
from .common import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, UsageError

#: command-group modules of this package, in help order
COMMAND_MODULES = ("predict", "training", "serve", "batch", "video")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="agegender", description="Gender and age of every face in your photos, offline.")
    p.add_argument("--version", action="version", version=f"agegender {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from ..errors import AgeGenderError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
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
        print(f"agegender: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AgeGenderError as exc:
        if args.debug:
            raise
        print(f"agegender: error: {exc}", file=sys.stderr)
        return EXIT_USAGE if "not found" in str(exc) else EXIT_SOME_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


__all__ = ["EXIT_OK", "EXIT_SOME_FAILED", "EXIT_USAGE", "UsageError", "build_parser", "main"]
