"""Any labelled folder described by a CSV: columns ``path, age, gender[, subject_id][, fold]``.

* ``age`` is a number of years (``34``, ``2.5``) or an inclusive range ``lo-hi`` (``25-32``); a blank,
  negative, reversed or above-``MAX_AGE`` age drops the row.
* ``gender`` is ``male``/``female``/``m``/``f`` (any case) or blank for unknown (kept, masked for gender).
  Numbers are rejected: datasets disagree on whether 0 means male (UTKFace) or female (IMDB-WIKI).
* ``fold`` must be a non-negative integer when present; other columns go to ``extra``.

Relative paths are resolved against ``image_root`` when given (rows whose image is not there are dropped
as "image missing"), else against the CSV's folder without checking.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from .records import AdapterReport, Record, iter_label_csv

log = logging.getLogger(__name__)

SOURCE = "csv"
MAX_AGE = 120.0
_NUMBER = r"\d+(?:\.\d+)?"
_AGE = re.compile(rf"^({_NUMBER})$")
_RANGE = re.compile(rf"^({_NUMBER})\s*-\s*({_NUMBER})$")
_GENDERS = {"male": "male", "m": "male", "female": "female", "f": "female", "": ""}
_NUMERIC = re.compile(r"^[+-]?\d+(?:\.\d*)?$")
_KNOWN = ("path", "age", "gender", "subject_id", "fold")


def parse_age(text: str) -> tuple[float | None, float, float] | None:
    """(age or None for a range, low, high) from ``"34"`` or ``"25-32"``, or None when unusable."""
    text = text.strip()
    m = _AGE.match(text)
    if m:
        v = float(m.group(1))
        return (v, v, v) if v <= MAX_AGE else None
    m = _RANGE.match(text)
    if m:
        lo, hi = float(m.group(1)), float(m.group(2))
        return (None, lo, hi) if lo <= hi <= MAX_AGE else None
    return None


def load_generic_csv(
    csv_path: str | Path, image_root: str | Path | None = None
) -> tuple[list[Record], AdapterReport]:
    """Records from a ``path, age, gender[, subject_id][, fold]`` CSV (source "csv")."""
    csv_path = Path(csv_path)
    base = Path(image_root) if image_root is not None else csv_path.parent
    report = AdapterReport(source=SOURCE)
    records: list[Record] = []
    for where, row in iter_label_csv(csv_path, ("path", "age", "gender"), report):
        if not row["path"]:
            report.drop("empty path", where)
            continue
        if not row["age"]:
            report.drop("age missing", where)
            continue
        age = parse_age(row["age"])
        if age is None:
            report.drop("age unparseable or out of range", f"{where} {row['age']!r}")
            continue
        g = row["gender"].lower()
        if g not in _GENDERS:
            reason = "numeric gender is ambiguous" if _NUMERIC.match(g) else "gender unparseable"
            report.drop(reason, f"{where} {row['gender']!r}")
            continue
        fold: int | None = None
        if row.get("fold"):
            if not row["fold"].isdecimal():
                report.drop("fold not a non-negative integer", f"{where} {row['fold']!r}")
                continue
            fold = int(row["fold"])
        p = Path(row["path"])
        if not p.is_absolute():
            p = base / p
        if image_root is not None and not p.is_file():
            report.drop("image missing", where)
            continue
        if _GENDERS[g] == "":
            report.map("gender blank -> unknown")
        if age[0] is None:
            report.map("age range")
        records.append(
            Record(
                path=str(p),
                age=age[0],
                age_low=age[1],
                age_high=age[2],
                gender=_GENDERS[g],
                subject=row.get("subject_id", ""),
                fold=fold,
                source=SOURCE,
                extra={k: v for k, v in row.items() if k not in _KNOWN and k and v},
            )
        )
    report.kept = len(records)
    log.info("%s", report.summary())
    return records, report
