"""Command-line style inputs (files, folders searched recursively for images, globs) -> image paths."""

from __future__ import annotations

import glob
import logging
import os
from pathlib import Path

log = logging.getLogger("agegender")


def expand_inputs(items: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Files, folders (recursive, image files only) and globs -> (paths, [(item, error)])."""
    from .io import is_image_path

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
