"""All-Age-Faces (Cheng et al. 2019): ``original/NNNNNAkk.jpg`` (kk = age) and the official image sets.

``image_sets/train.txt`` and ``val.txt`` hold ``FILE GENDER`` lines (0 female, 1 male). The official part
of each photo is kept in ``Record.extra["aaf_part"]`` so that splits can keep the official train/val
separation (:func:`aaf_split_rows`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .records import AdapterReport, Record
from .splits import AGE_BANDS, SplitRow

_NAME = re.compile(r"^(\d{5})A(\d{2})\.jpg$", re.IGNORECASE)
PARTS = {"train.txt": "train", "val.txt": "val"}


def load_aaf(root: str | Path) -> tuple[list[Record], AdapterReport]:
    """Annotation table of an AAF folder laid out by ``get_aaf.sh`` (``original/``, ``image_sets/``)."""
    root = Path(root)
    images, sets = root / "original", root / "image_sets"
    if not images.is_dir() or not sets.is_dir():
        raise DatasetError(f"All-Age-Faces not found in {root} (expects original/ and image_sets/)")
    report = AdapterReport(source="aaf")
    records: list[Record] = []
    seen: set[str] = set()
    for fname, part in PARTS.items():
        list_file = sets / fname
        if not list_file.is_file():
            raise DatasetError(f"{list_file}: missing (the official {part} list)")
        for line in list_file.read_text().splitlines():
            fields = line.split()
            if not fields:
                continue
            name = fields[0]
            m = _NAME.match(name)
            if len(fields) != 2 or fields[1] not in ("0", "1") or not m:
                report.drop("unparseable line", line)
                continue
            if name in seen:
                report.drop("listed twice", name)
                continue
            path = images / name
            if not path.is_file():
                report.drop("image missing", name)
                continue
            seen.add(name)
            age = float(m.group(2))
            records.append(Record(path=str(path), age=age, age_low=age, age_high=age,
                                  gender="female" if fields[1] == "0" else "male", subject="",
                                  source="aaf", extra={"aaf_part": part}))
    report.kept = len(records)
    return records, report


def aaf_split_rows(records: list[Record], hashes: list[str], val_fraction: float = 0.1,
                   seed: int = 0) -> list[SplitRow]:
    """AAF's official split, kept: official ``val`` -> our ``test`` (reported, never used to choose);
    official ``train`` -> our ``train`` plus a ``val`` part carved from it (stratified by age band and
    gender) to choose epochs and recipes on. Paths are the records' own."""
    rng = np.random.default_rng(seed)
    rows: list[SplitRow] = []
    strata: dict[tuple[int, str], list[int]] = {}
    for i, r in enumerate(records):
        if r.extra.get("aaf_part") == "val":
            rows.append(SplitRow(r.path, hashes[i], "test", -1))
        else:
            band = int(np.searchsorted(AGE_BANDS, r.age or 0, side="right") - 1)
            strata.setdefault((band, r.gender), []).append(i)
    for key in sorted(strata):
        idx = strata[key]
        rng.shuffle(idx)
        n_val = int(round(len(idx) * val_fraction))
        for j, i in enumerate(idx):
            rows.append(SplitRow(records[i].path, hashes[i], "val" if j < n_val else "train",
                                 j % 5))
    return rows
