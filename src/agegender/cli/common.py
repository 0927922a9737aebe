"""What every command shares: exit codes, usage errors, input expansion and the CSV/table row format."""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("agegender")

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2
CSV_COLUMNS = ["file", "face", "x1", "y1", "x2", "y2", "det_score", "gender", "p_female", "age", "age_low",
               "age_high", "age_group", "error"]


class UsageError(Exception):
    """Bad command-line usage: exit code 2."""


def expand_inputs(items: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Files, folders (recursive, image files only) and globs -> (paths, [(item, error)])."""
    from ..io import is_image_path

    paths: list[str] = []
    missing: list[tuple[str, str]] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(str(f) for f in p.rglob("*") if f.is_file() and is_image_path(f))
            if not found:
                log.warning("%s: folder has no image files", item)
            paths += found
        elif p.exists():
            paths.append(item)
        elif glob.has_magic(item):
            found = sorted(f for f in glob.glob(item, recursive=True) if os.path.isfile(f))
            if not found:
                missing.append((item, f"{item}: no file matches"))
            paths += found
        else:
            missing.append((item, f"{item}: no such file"))
    return paths, missing


def _fmt(v: float, nd: int = 2) -> str:
    return f"{v:.{nd}f}"


def csv_rows(pred) -> Iterator[list[str]]:
    if pred.error:
        yield [pred.source, "", "", "", "", "", "", "", "", "", "", "", "", pred.error]
        return
    if not pred.faces:
        yield [pred.source] + [""] * 13
        return
    for i, f in enumerate(pred.faces):
        x1, y1, x2, y2 = f.box
        yield [pred.source, str(i), _fmt(x1, 1), _fmt(y1, 1), _fmt(x2, 1), _fmt(y2, 1), _fmt(f.det_score, 4),
               f.gender, _fmt(f.p_female, 4), _fmt(f.age, 1), _fmt(f.age_low, 1), _fmt(f.age_high, 1),
               f.age_group, ""]


def table_lines(pred) -> Iterator[str]:
    if pred.error:
        yield f"{pred.source}: ERROR {pred.error}"
        return
    if not pred.faces:
        yield f"{pred.source}: no face found"
        return
    for i, f in enumerate(pred.faces):
        x1, y1, x2, y2 = (round(v) for v in f.box)
        yield (f"{pred.source}  face {i}  {f.gender:<6} {f.gender_probability:>4.0%}  age {f.age:4.1f} "
               f"[{f.age_low:.0f}-{f.age_high:.0f}]  group {f.age_group:<5}  box ({x1},{y1})-({x2},{y2})")
