"""IMDB-WIKI: metadata in ``imdb.mat`` / ``wiki.mat`` (a 1x1 MATLAB struct named ``imdb`` or ``wiki``).

Fields used (each 1xN): ``dob`` (MATLAB serial date number), ``photo_taken`` (year), ``full_path`` (cell
array of paths relative to the crop folder), ``gender`` (0 female, 1 male, NaN unknown: the opposite
coding from UTKFace), ``face_score`` (-inf when no face was found), ``second_face_score`` (NaN when there is
no second face), ``name`` and, for imdb, ``celeb_id``.

Age rule: the photo is assumed to be taken on July 1st of ``photo_taken``, so
``age = photo_taken - year(dob)``, minus 1 when ``dob`` falls after July 1st of its year.

Rows are dropped (and counted) when: the face score is -inf ("no face") or below ``min_face_score``; a
second face was detected and ``drop_second_face`` is set; ``dob`` is not a valid date; the age is outside
0-100; ``image_root`` is given and the image is not under it. ``subject`` is ``celeb_id`` (imdb) or the name.
"""

from __future__ import annotations

import logging
import math
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from ..errors import DatasetError
from .records import AdapterReport, Record

log = logging.getLogger(__name__)

MIN_AGE, MAX_AGE = 0, 100
_REQUIRED = ("dob", "photo_taken", "full_path", "gender", "face_score", "second_face_score")


def datenum_to_date(datenum: float) -> date | None:
    """Calendar date of a MATLAB serial date number (day 1 = 1 Jan of year 0), or None if invalid."""
    if not math.isfinite(datenum):
        return None
    try:
        # MATLAB counts year 0 (a leap year, 366 days); Python's ordinal 1 is 1 Jan of year 1.
        return date.fromordinal(int(datenum) - 366)
    except (ValueError, OverflowError):
        return None


def age_at_photo(dob: date, photo_taken: int) -> int:
    """Age on July 1st of ``photo_taken`` for someone born on ``dob``."""
    age = photo_taken - dob.year
    if (dob.month, dob.day) > (7, 1):
        age -= 1
    return age


def _cell_str(value: Any) -> str:
    """A MATLAB cell entry (string array, possibly empty) as a Python string."""
    while isinstance(value, np.ndarray):
        if value.size == 0:
            return ""
        value = value.flat[0]
    return str(value).strip()


def _struct(mat_path: Path) -> tuple[str, dict[str, np.ndarray]]:
    try:
        mat = scipy.io.loadmat(str(mat_path))
    except (NotImplementedError, ValueError, OSError, TypeError) as exc:
        raise DatasetError(f"cannot read {mat_path.name} as a MATLAB v5 file: {exc}") from exc
    key = next((k for k in ("imdb", "wiki") if k in mat), None)
    if key is None:
        raise DatasetError(f"{mat_path.name}: no 'imdb' or 'wiki' struct")
    s = mat[key]
    if s.dtype.names is None or s.size < 1:
        raise DatasetError(f"{mat_path.name}: '{key}' is not a struct")
    rec = s.flat[0]
    fields = {name: np.asarray(rec[name]).reshape(-1) for name in s.dtype.names}
    missing = [f for f in _REQUIRED if f not in fields]
    if missing:
        raise DatasetError(f"{mat_path.name}: missing field(s) {', '.join(missing)}")
    n = fields["full_path"].size
    for name in _REQUIRED + ("name", "celeb_id"):
        if name in fields and fields[name].size != n:
            raise DatasetError(f"{mat_path.name}: field {name} has {fields[name].size} entries, expected {n}")
    return key, fields


def load_imdbwiki_mat(
    mat_path: str | Path,
    image_root: str | Path | None = None,
    min_face_score: float = 1.0,
    drop_second_face: bool = True,
) -> tuple[list[Record], AdapterReport]:
    """Records from an IMDB-WIKI metadata file; ``source`` is the struct name ("imdb" or "wiki")."""
    mat_path = Path(mat_path)
    if not mat_path.is_file():
        raise DatasetError(f"IMDB-WIKI metadata not found: {mat_path}")
    root = Path(image_root) if image_root is not None else None
    key, f = _struct(mat_path)
    report = AdapterReport(source=key)
    records: list[Record] = []
    names = f.get("name")
    celeb = f.get("celeb_id")
    for i in range(f["full_path"].size):
        rel = _cell_str(f["full_path"][i])
        where = rel or f"#{i}"
        if not rel:
            report.drop("empty path", where)
            continue
        score = float(f["face_score"][i])
        if not score > -math.inf:  # -inf, and NaN too
            report.drop("no face", where)
            continue
        if score < min_face_score:
            report.drop(f"face score below {min_face_score:g}", where)
            continue
        if drop_second_face and not math.isnan(float(f["second_face_score"][i])):
            report.drop("second face", where)
            continue
        dob = datenum_to_date(float(f["dob"][i]))
        taken = float(f["photo_taken"][i])
        if dob is None or not math.isfinite(taken):
            report.drop("invalid dob or photo year", where)
            continue
        age = age_at_photo(dob, int(taken))
        if not MIN_AGE <= age <= MAX_AGE:
            report.drop(f"age outside {MIN_AGE}-{MAX_AGE}", f"{where} age={age}")
            continue
        if root is not None:
            if not (root / rel).is_file():
                report.drop("image missing", where)
                continue
            path = str(root / rel)
        else:
            path = rel
        g = float(f["gender"][i])
        if math.isnan(g):
            gender = ""
            report.map("gender NaN -> unknown")
        elif g == 0:
            gender = "female"
        elif g == 1:
            gender = "male"
        else:
            gender = ""
            report.map(f"gender {g:g} -> unknown")
        name = _cell_str(names[i]) if names is not None else ""
        if celeb is not None and math.isfinite(float(celeb[i])):
            subject = str(int(celeb[i]))
        else:
            subject = name
        extra = {"name": name} if name else {}
        records.append(
            Record(
                path=path,
                age=float(age),
                age_low=float(age),
                age_high=float(age),
                gender=gender,
                subject=subject,
                source=key,
                extra=extra,
            )
        )
    report.kept = len(records)
    log.info("%s", report.summary())
    return records, report
