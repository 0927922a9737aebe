"""UTKFace: labels in file names ``AGE_GENDER_RACE_DATETIME.jpg.chip.jpg`` (gender 0 male, 1 female)."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import DatasetError
from .records import AdapterReport, Record

RACES = ("white", "black", "asian", "indian", "other")
_NAME = re.compile(r"^\s*(\d{1,3})_(\d)_(?:(\d)_)?(\d{8,})?.*\.(?:jpe?g|png)$", re.IGNORECASE)


def parse_name(name: str) -> tuple[int, int, int | None] | None:
    """(age, gender 0/1, race 0-4 or None) from a UTKFace file name, or None if it does not parse.

    Names missing the race field (``39_1_20170116174525125.jpg.chip.jpg``) give race None.
    """
    m = _NAME.match(name)
    if not m:
        return None
    age, gender, race = int(m.group(1)), int(m.group(2)), m.group(3)
    if gender not in (0, 1):
        return None
    r = int(race) if race is not None else None
    if r is not None and not 0 <= r <= 4:
        r = None
    return age, gender, r


def load_utkface(root: str | Path, max_age: int = 100) -> tuple[list[Record], AdapterReport]:
    """Annotation table for a folder of UTKFace crops; ages above ``max_age`` are clipped to it."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"UTKFace folder not found: {root}")
    report = AdapterReport(source="utkface")
    records: list[Record] = []
    for path in sorted(root.iterdir()):
        if not path.is_file():
            continue
        parsed = parse_name(path.name)
        if parsed is None:
            report.drop("unparseable file name", path.name)
            continue
        age, gender, race = parsed
        if " " in path.name:
            report.map("space in file name")
        extra = {}
        if race is None:
            report.map("no race field")
        else:
            extra["race"] = RACES[race]
        if age > max_age:
            report.map(f"age above {max_age} clipped")
            age = max_age
        records.append(
            Record(
                path=str(path),
                age=float(age),
                age_low=float(age),
                age_high=float(age),
                gender="female" if gender == 1 else "male",
                subject="",
                source="utkface",
                extra=extra,
            )
        )
    report.kept = len(records)
    return records, report
