"""The one annotation table every dataset adapter produces."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DatasetError

GENDERS = ("male", "female")


@dataclass
class Record:
    """One labelled face image.

    ``age`` is in years when known exactly; datasets with age ranges set ``age_low``/``age_high``
    (inclusive) instead, and exact ages have ``age_low == age_high == age``.
    ``gender`` is "male", "female" or "" (unknown: masked out of the gender loss and metrics).
    """

    path: str
    age: float | None
    age_low: float | None
    age_high: float | None
    gender: str
    subject: str = ""
    fold: int | None = None
    source: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def gender_index(self) -> int:
        """0 male, 1 female, -1 unknown."""
        return GENDERS.index(self.gender) if self.gender in GENDERS else -1


@dataclass
class AdapterReport:
    """What an adapter kept, mapped and dropped, with reasons."""

    source: str
    kept: int = 0
    mapped: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def drop(self, reason: str, example: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < 3:
            ex.append(example)

    def map(self, what: str) -> None:
        self.mapped[what] = self.mapped.get(what, 0) + 1

    def summary(self) -> str:
        parts = [f"{self.source}: kept {self.kept}"]
        for k, v in sorted(self.mapped.items()):
            parts.append(f"mapped {v} ({k})")
        for k, v in sorted(self.dropped.items()):
            parts.append(f"dropped {v} ({k})")
        return "; ".join(parts)


def iter_label_csv(
    csv_path: Path, required: tuple[str, ...], report: AdapterReport, what: str = "annotation CSV"
) -> Iterator[tuple[str, dict[str, str]]]:
    """Rows of a label CSV as stripped ``{lower-case column: value}`` dicts with a ``file:line`` tag.

    Missing required columns raise :class:`DatasetError`; rows with too many columns are dropped
    (and reported), blank lines skipped.
    """
    if not csv_path.is_file():
        raise DatasetError(f"{what} not found: {csv_path}")
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fieldnames = [f.strip().lower() for f in (reader.fieldnames or [])]
        missing = [c for c in required if c not in fieldnames]
        if missing:
            raise DatasetError(f"{csv_path.name}: missing column(s) {', '.join(missing)}")
        reader.fieldnames = fieldnames
        for line_no, raw in enumerate(reader, start=2):
            where = f"{csv_path.name}:{line_no}"
            if None in raw:
                report.drop("malformed row (too many columns)", where)
                continue
            row = {k: (v or "").strip() for k, v in raw.items()}
            if not any(row.values()):
                report.drop("blank line", where)
                continue
            yield where, row
