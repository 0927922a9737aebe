"""What a batch job reads: folders, globs, files, list files (text or CSV) and URIs, as one list of keys.

A key is what identifies an input in the output and in the part manifests: the absolute path of a local
file, or a URI (``scheme://...``) that pyarrow's filesystems can read (``file://``, ``s3://``, ``gs://``,
...). Keys are deduplicated, in the order given. A rerun must name its inputs the same way (absolute
paths make ``cd`` irrelevant).
"""

from __future__ import annotations

import csv
import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from ..io import is_image_path

if TYPE_CHECKING:
    from pyarrow.fs import FileSystem

#: a file with one of these suffixes is a list of inputs, not an image
LIST_SUFFIXES = (".txt", ".csv", ".lst", ".list")
#: the column of a CSV list that holds the paths (else its first column)
PATH_COLUMNS = ("path", "file", "filename", "image")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


@dataclass
class Inputs:
    """Keys to process, and the items that named nothing (item, one-line error)."""

    keys: list[str] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set, repr=False)

    def add(self, key: str) -> None:
        if key not in self._seen:
            self._seen.add(key)
            self.keys.append(key)


def is_uri(item: str) -> bool:
    return bool(_URI.match(item))


def local_key(path: str) -> str:
    return os.path.abspath(path)


def expand(items: list[str]) -> Inputs:
    """Folders (recursive, image files only), globs, files, list files and URIs -> :class:`Inputs`."""
    from ..inputs import expand_inputs

    out = Inputs()
    for item in items:
        if is_uri(item):
            _expand_uri(item, out)
        elif Path(item).is_file() and Path(item).suffix.lower() in LIST_SUFFIXES:
            for entry in read_list(Path(item)):
                if is_uri(entry):
                    out.add(entry)
                elif glob.has_magic(entry):
                    found = sorted(f for f in glob.glob(entry, recursive=True) if os.path.isfile(f))
                    if not found:
                        out.missing.append((entry, f"{entry}: no file matches"))
                    for f in found:
                        out.add(local_key(f))
                else:  # not checked here: a list of millions is not stat()ed twice; a missing file is a failed row
                    out.add(local_key(entry))
        else:
            paths, missing = expand_inputs([item])
            for p in paths:
                out.add(local_key(p))
            out.missing += missing
    return out


def read_list(path: Path) -> list[str]:
    """The entries of a list file, relative ones resolved against the list's folder.

    Text: one path per line; blank lines and lines starting with ``#`` are skipped. CSV: the column
    named path/file/filename/image if the first row names one, else the first column.
    """
    base = path.resolve().parent
    entries: list[str] = []
    with open(path, newline="", encoding="utf-8") as f:
        if path.suffix.lower() == ".csv":
            reader = csv.reader(f)
            first = next(reader, None)
            if first is None:
                return []
            header = [c.strip().lower() for c in first]
            col = next((header.index(n) for n in PATH_COLUMNS if n in header), None)
            rows = reader if col is not None else [first, *reader]
            entries = [r[col or 0].strip() for r in rows if r and r[col or 0].strip()]
        else:
            entries = [s for s in (line.strip() for line in f) if s and not s.startswith("#")]
    return [e if is_uri(e) or os.path.isabs(e) else str(base / e) for e in entries]


def _pyarrow_fs() -> ModuleType:
    try:
        from pyarrow import fs
    except ImportError:
        raise ValueError("reading URIs needs pyarrow, which is not installed: pip install '.[scale]' in the "
                         "agegender source folder") from None
    return fs


def filesystem(uri: str) -> tuple[FileSystem, str]:
    """pyarrow's filesystem for a URI and the path inside it (``ValueError`` without pyarrow)."""
    return _pyarrow_fs().FileSystem.from_uri(uri)


def _expand_uri(item: str, out: Inputs) -> None:
    try:
        fs = _pyarrow_fs()
        filesys, path = filesystem(item)
        info = filesys.get_file_info(path)
    except (OSError, ValueError) as exc:
        out.missing.append((item, f"{item}: cannot open ({(str(exc).splitlines() or [type(exc).__name__])[0]})"))
        return
    scheme = item.split("://", 1)[0]
    if info.type == fs.FileType.File:
        out.add(item)
    elif info.type == fs.FileType.Directory:
        found = sorted(i.path for i in filesys.get_file_info(fs.FileSelector(path, recursive=True))
                       if i.type == fs.FileType.File and is_image_path(Path(i.path)))
        for p in found:
            out.add(f"{scheme}://{p}")
    else:
        out.missing.append((item, f"{item}: no such file"))


def read_uri(uri: str) -> bytes:
    """The bytes of a URI (raises OSError or ValueError)."""
    filesys, path = filesystem(uri)
    with filesys.open_input_stream(path) as f:
        return f.read()
