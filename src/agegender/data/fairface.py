"""FairFace-style label CSVs: columns ``file, age, gender[, race][, service_test]``.

Ages are bins: ``0-2``, ``3-9``, ``10-19``, ... ``60-69`` and an open top bin written ``more than 70`` or
``70+``; a record takes ``age_low``/``age_high`` from its bin (open bins are capped at ``OPEN_BIN_CAP``)
and ``age=None``. Gender is ``Male``/``Female`` (any case). Rows with an unparseable age bin or gender, or
an empty file name, are dropped and counted in the report; ``race`` and ``service_test`` go to ``extra``.

Relative file names are resolved against ``image_root`` when given (rows whose image is not there are
dropped as "image missing"), else against the CSV's folder without checking.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from .records import AdapterReport, Record, iter_label_csv

log = logging.getLogger(__name__)

SOURCE = "fairface"
OPEN_BIN_CAP = 100.0
STANDARD_BINS = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70")
_BIN = re.compile(r"^(\d+)\s*-\s*(\d+)$")
_OPEN = re.compile(r"^(?:more\s+than\s+(\d+)|(\d+)\s*\+)$", re.IGNORECASE)


def parse_age_bin(text: str) -> tuple[float, float] | None:
    """Inclusive (low, high) years of a FairFace age bin, or None when it does not parse."""
    text = text.strip()
    m = _BIN.match(text)
    if m:
        lo, hi = float(m.group(1)), float(m.group(2))
        return (lo, hi) if lo <= hi else None
    m = _OPEN.match(text)
    if m:
        lo = float(m.group(1) or m.group(2))
        return (lo, OPEN_BIN_CAP) if lo <= OPEN_BIN_CAP else None
    return None


def _resolve(name: str, base: Path, check: bool) -> str | None:
    p = Path(name)
    if not p.is_absolute():
        p = base / p
    if check and not p.is_file():
        return None
    return str(p)


def load_fairface_csv(
    csv_path: str | Path, image_root: str | Path | None = None
) -> tuple[list[Record], AdapterReport]:
    """Records from one FairFace label CSV (e.g. ``fairface_label_train.csv``)."""
    csv_path = Path(csv_path)
    base = Path(image_root) if image_root is not None else csv_path.parent
    report = AdapterReport(source=SOURCE)
    records: list[Record] = []
    for where, row in iter_label_csv(csv_path, ("file", "age", "gender"), report, "FairFace CSV"):
        if not row["file"]:
            report.drop("empty file name", where)
            continue
        age_bin = parse_age_bin(row["age"])
        if age_bin is None:
            report.drop("age bin unparseable", f"{where} {row['age']!r}")
            continue
        g = row["gender"].lower()
        if g not in ("male", "female"):
            report.drop("gender unparseable", f"{where} {row['gender']!r}")
            continue
        path = _resolve(row["file"], base, check=image_root is not None)
        if path is None:
            report.drop("image missing", where)
            continue
        if row["age"] not in STANDARD_BINS:
            report.map(f"age bin {row['age']!r} -> {age_bin[0]:g}-{age_bin[1]:g}")
        extra = {k: row[k] for k in ("race", "service_test") if row.get(k)}
        records.append(
            Record(
                path=path,
                age=None,
                age_low=age_bin[0],
                age_high=age_bin[1],
                gender=g,
                subject="",
                source=SOURCE,
                extra=extra,
            )
        )
    report.kept = len(records)
    log.info("%s", report.summary())
    return records, report
