"""Adience: five cross-validation folds (``fold_<k>_data.txt``) with age-group and gender labels.

Fold files are tab-separated with the header ``user_id original_image face_id age gender x y dx dy
tilt_ang fiducial_yaw_angle fiducial_score``. The image of a row is
``aligned/<user_id>/landmark_aligned_face.<face_id>.<original_image>`` when that file exists under
``image_root``, else ``faces/<user_id>/coarse_tilt_aligned_face.<face_id>.<original_image>``.

Label cleaning (every step is counted in the :class:`AdapterReport`):

* The eight canonical groups ``(0, 2) (4, 6) (8, 12) (15, 20) (25, 32) (38, 43) (48, 53) (60, 100)`` are
  kept as they are: ``age=None``, ``age_low``/``age_high`` = the group bounds.
* Off-grid ranges such as ``(27, 32)``, ``(38, 42)``, ``(8, 23)`` or the reversed ``(25, 23)`` are mapped
  to a canonical group by :func:`map_age_range` and take that group's bounds (``age=None``).
* Single ages such as ``35`` are mapped to a group by the same rule but keep ``age`` (and
  ``age_low == age_high``) equal to that number.
* ``None`` and anything else that does not parse is dropped with a reason.

The mapping rule of :func:`map_age_range`: take the midpoint of the (sorted) range; if it lies inside a
group's closed interval, that group; otherwise the group whose interval is nearest to the midpoint
(distance from the midpoint to the interval's closest end). Ties, i.e. a midpoint exactly half-way
between two groups (``35``, ``3``, ``7``), go to the younger group.

Every kept row carries ``extra["age_group"]`` (the label from ``ADIENCE_LABELS``, e.g. ``"25-32"`` or
``"60+"``) and ``extra["age_raw"]`` (the label as written in the fold file).

Gender ``f`` is female, ``m`` male; ``u``, blank or any other value become ``""`` (kept for age, masked
for gender, counted in the report).
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

from ..errors import DatasetError
from ..types import ADIENCE_GROUPS, ADIENCE_LABELS
from .records import AdapterReport, Record

log = logging.getLogger(__name__)

SOURCE = "adience"
N_ROWS_PUBLISHED = 19487  # rows in the five official fold files together
_COLUMNS = ("user_id", "original_image", "face_id", "age", "gender")
_FOLD_NAME = re.compile(r"^fold_(\d+)_data\.txt$")
_RANGE = re.compile(r"^\(\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*\)$")
_SINGLE = re.compile(r"^\d+(?:\.\d+)?$")


def map_age_range(lo: float, hi: float) -> int:
    """Index into ``ADIENCE_GROUPS`` for the age range ``(lo, hi)`` (a single age: ``lo == hi``).

    The midpoint of the range picks the group containing it, else the group nearest to it; ties go to
    the younger group (see the module docstring).
    """
    lo, hi = min(lo, hi), max(lo, hi)
    mid = (lo + hi) / 2.0
    best, best_dist = 0, float("inf")
    for i, (g_lo, g_hi) in enumerate(ADIENCE_GROUPS):
        dist = max(g_lo - mid, 0.0, mid - g_hi)
        if dist < best_dist:  # strict: on a tie the earlier (younger) group stays
            best, best_dist = i, dist
    return best


def _parse_age(text: str) -> tuple[float, float, bool] | None:
    """(lo, hi, is_single_age) from an Adience age label, or None when it does not parse."""
    text = text.strip()
    m = _RANGE.match(text)
    if m:
        return float(m.group(1)), float(m.group(2)), False
    if _SINGLE.match(text):
        v = float(text)
        return v, v, True
    return None


def _fold_files(fold_dir: Path) -> list[tuple[int, Path]]:
    found = []
    for path in sorted(fold_dir.iterdir()):
        m = _FOLD_NAME.match(path.name)
        if m and path.is_file():
            found.append((int(m.group(1)), path))
    return found


def _image_path(row: dict[str, str], image_root: Path | None) -> str | None:
    user, face_id, image = row["user_id"], row["face_id"], row["original_image"]
    aligned = f"aligned/{user}/landmark_aligned_face.{face_id}.{image}"
    if image_root is None:
        return aligned
    for rel in (aligned, f"faces/{user}/coarse_tilt_aligned_face.{face_id}.{image}"):
        if (image_root / rel).is_file():
            return str(image_root / rel)
    return None


def load_adience(
    fold_dir: str | Path, image_root: str | Path | None = None
) -> tuple[list[Record], AdapterReport]:
    """Records from the ``fold_<k>_data.txt`` files in ``fold_dir`` (``fold`` = k, ``subject`` = user_id).

    With ``image_root`` given, rows whose image is under neither ``aligned/`` nor ``faces/`` are dropped
    ("image missing") and paths are absolute under ``image_root``; without it paths stay relative
    (``aligned/...``) and are not checked.
    """
    fold_dir = Path(fold_dir)
    if not fold_dir.is_dir():
        raise DatasetError(f"Adience fold folder not found: {fold_dir}")
    folds = _fold_files(fold_dir)
    if not folds:
        raise DatasetError(f"no fold_<k>_data.txt files in {fold_dir}")
    root = Path(image_root) if image_root is not None else None
    if root is not None and not root.is_dir():
        raise DatasetError(f"Adience image folder not found: {root}")

    report = AdapterReport(source=SOURCE)
    records: list[Record] = []
    for fold, path in folds:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh, delimiter="\t")
            header = [h.strip() for h in next(reader, [])]
            missing = [c for c in _COLUMNS if c not in header]
            if missing:
                raise DatasetError(f"{path.name}: missing column(s) {', '.join(missing)}")
            col = {c: header.index(c) for c in _COLUMNS}
            for line_no, cells in enumerate(reader, start=2):
                where = f"{path.name}:{line_no}"
                if not any(c.strip() for c in cells):
                    report.drop("blank line", where)
                    continue
                if len(cells) <= max(col.values()):
                    report.drop("malformed row (too few columns)", where)
                    continue
                row = {c: cells[i].strip() for c, i in col.items()}
                if not (row["user_id"] and row["original_image"] and row["face_id"]):
                    report.drop("malformed row (empty id or image)", where)
                    continue
                rec = _row_record(row, fold, root, report, where)
                if rec is not None:
                    records.append(rec)
    report.kept = len(records)
    log.info("%s", report.summary())
    return records, report


def _row_record(
    row: dict[str, str], fold: int, root: Path | None, report: AdapterReport, where: str
) -> Record | None:
    raw_age = row["age"]
    parsed = _parse_age(raw_age)
    if parsed is None:
        reason = {"None": "age None", "": "age blank"}.get(raw_age, "age unparseable")
        report.drop(reason, f"{where} {raw_age!r}")
        return None
    lo, hi, single = parsed
    path = _image_path(row, root)
    if path is None:
        report.drop("image missing", where)
        return None

    group = map_age_range(lo, hi)
    g_lo, g_hi = ADIENCE_GROUPS[group]
    label = ADIENCE_LABELS[group]
    if single:
        report.map(f"single age {raw_age} -> {label}")
        age, age_low, age_high = lo, lo, lo
    else:
        if (lo, hi) != (g_lo, g_hi):
            report.map(f"range {raw_age} -> {label}")
        age, age_low, age_high = None, float(g_lo), float(g_hi)

    g = row["gender"].lower()
    if g == "f":
        gender = "female"
    elif g == "m":
        gender = "male"
    else:
        gender = ""
        report.map("gender blank -> unknown" if g == "" else f"gender {g!r} -> unknown")
    return Record(
        path=path,
        age=age,
        age_low=age_low,
        age_high=age_high,
        gender=gender,
        subject=row["user_id"],
        fold=fold,
        source=SOURCE,
        extra={"age_group": label, "age_raw": raw_age, "face_id": row["face_id"]},
    )
