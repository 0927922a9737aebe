"""What every command shares: exit codes, usage errors, checked option types and the table format of `predict`.

Every option value is checked when the command line is parsed, by the types below (:class:`Number`,
:class:`PathArg`, :class:`KeyValue`, :class:`DataSpec`): a bad value is one line and exit code 2 before any
work starts. Their bounds and roles are public so that the tests can walk every option with bad values.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

log = logging.getLogger("agegender")

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line usage: exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (the usage itself is in ``--help``)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# -- checked option types ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    """An argparse type: an ``int`` or a finite ``float`` within ``lo``..``hi`` (``lo`` excluded if ``lo_open``)."""

    kind: type = int
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False

    def describe(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"{'above' if self.lo_open else 'from'} {self.lo:g} {'and at most' if self.lo_open else 'to'} " \
                   f"{self.hi:g}"
        if self.lo is not None:
            return f"{'above' if self.lo_open else 'at least'} {self.lo:g}"
        return f"at most {self.hi:g}" if self.hi is not None else "any value"

    def __call__(self, text: str) -> int | float:
        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if self.kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        low_bad = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        if low_bad or (self.hi is not None and value > self.hi):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text}")
        return value


COUNT = Number(int, 1)  #: at least one
NON_NEGATIVE = Number(int, 0)
THREADS = Number(int, 0, 1024)  #: 0: automatic
WORKERS = Number(int, 0, 1024)  #: 0: one per CPU
PIXELS = Number(float, 0)
PROBABILITY = Number(float, 0, 1)
POSITIVE = Number(float, 0, lo_open=True)


def _nearest_existing(path: str) -> str:
    p = os.path.abspath(path)
    while not os.path.lexists(p):
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    return p


@dataclass(frozen=True)
class PathArg:
    """An argparse type for a path, checked before any work: ``role`` is one of

    * ``in-file``, ``in-dir``: must exist (as a file, as a folder);
    * ``out-file``: a file to write; its folder must exist and be writable, and it must not be a folder;
    * ``out-dir``: a folder to write into, created if missing: it, or the nearest folder above it that
      exists, must be a writable folder.

    The value stays a string.
    """

    role: str

    def __call__(self, text: str) -> str:
        if not text:
            raise argparse.ArgumentTypeError("expected a path, got ''")
        problem = getattr(self, f"_{self.role.replace('-', '_')}")(text)
        if problem:
            raise argparse.ArgumentTypeError(f"{text}: {problem}")
        return text

    @staticmethod
    def _in_file(text: str) -> str:
        if not os.path.exists(text):
            return "no such file"
        return "" if os.path.isfile(text) else "not a file"

    @staticmethod
    def _in_dir(text: str) -> str:
        if not os.path.exists(text):
            return "no such folder"
        return "" if os.path.isdir(text) else "not a folder"

    @staticmethod
    def _out_file(text: str) -> str:
        if os.path.isdir(text):
            return "is a folder (give a file name)"
        parent = os.path.dirname(os.path.abspath(text))
        if not os.path.isdir(parent):
            return "its folder does not exist"
        if os.path.exists(text):
            return "" if os.access(text, os.W_OK) else "not writable"
        return "" if os.access(parent, os.W_OK | os.X_OK) else "its folder is not writable"

    @staticmethod
    def _out_dir(text: str) -> str:
        near = _nearest_existing(text)
        if not os.path.isdir(near):
            return "not a folder" if near == os.path.abspath(text) else f"cannot create a folder under {near}"
        return "" if os.access(near, os.W_OK | os.X_OK) else f"{near} is not writable"


IN_FILE, IN_DIR, OUT_FILE, OUT_DIR = (PathArg(r) for r in ("in-file", "in-dir", "out-file", "out-dir"))


@dataclass(frozen=True)
class KeyValue:
    """An argparse type for ``KEY=VALUE`` (a non-empty key)."""

    def __call__(self, text: str) -> str:
        key, eq, _ = text.partition("=")
        if not eq or not key.strip():
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
        return text


@dataclass(frozen=True)
class DataSpec:
    """An argparse type for ``DATASET:PATH`` whose PATH exists."""

    def __call__(self, text: str) -> str:
        name, colon, path = text.partition(":")
        if not colon or not name.strip() or not path:
            raise argparse.ArgumentTypeError(f"expected DATASET:PATH (e.g. utkface:../shared/data/utkface), "
                                             f"got {text!r}")
        if not os.path.exists(path):
            raise argparse.ArgumentTypeError(f"{path}: no such file or folder")
        return text


def progress_wanted(quiet: bool) -> bool:
    """Progress bars only for a person watching: not with ``--quiet``, not when standard error is no terminal."""
    return not quiet and sys.stderr.isatty()


def table_lines(pred) -> Iterator[str]:
    if pred.error:
        error = pred.error
        if error.startswith(f"{pred.source}: "):  # the file is named once, at the start of the line
            error = error[len(pred.source) + 2:]
        yield f"{pred.source}: ERROR {error}"
        return
    if not pred.faces:
        yield f"{pred.source}: no face found"
        return
    for i, f in enumerate(pred.faces):
        x1, y1, x2, y2 = (round(v) for v in f.box)
        yield (f"{pred.source}  face {i}  {f.gender:<6} {f.gender_probability:>4.0%}  age {f.age:4.1f} "
               f"[{f.age_low:.0f}-{f.age_high:.0f}]  group {f.age_group:<5}  box ({x1},{y1})-({x2},{y2})")


def install_hint(extra: str) -> str:
    """How to install an extra: from the source folder (the package is not on a registry)."""
    return f"pip install '.[{extra}]' in the agegender source folder"
