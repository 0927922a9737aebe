"""Leak-free splits, fixed once and written to disk.

* byte-identical images (same content hash) form one group; groups whose copies disagree on age or
  gender are dropped (and counted), the others keep a single copy;
* when subject ids exist, all of a subject's images stay in one part;
* parts are stratified by age band x gender (and a group such as FairFace's race when asked); a held-out
  test part, a validation part and k folds over the rest (for cross-validation), from a fixed seed;
* datasets that come with their own folds (Adience) keep them: fold 0 validates, no test part.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .records import Record

log = logging.getLogger(__name__)

AGE_BANDS = (0, 3, 10, 20, 30, 40, 50, 60, 70, 200)


@dataclass
class SplitReport:
    total: int = 0
    duplicate_groups: int = 0
    duplicate_copies_removed: int = 0
    conflicting_groups: int = 0
    conflicting_images_dropped: int = 0
    parts: dict[str, int] = field(default_factory=dict)


@dataclass
class SplitRow:
    path: str
    content_hash: str
    part: str  # "train" | "val" | "test"
    fold: int  # 0..k-1 for train/val rows (cross-validation folds), -1 for test


def file_hash(path: str) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def _band(r: Record) -> int:
    age = r.age if r.age is not None else ((r.age_low or 0) + (r.age_high or 0)) / 2
    return int(np.searchsorted(AGE_BANDS, age, side="right") - 1)


def make_split(
    records: list[Record],
    hashes: list[str] | None = None,
    test_fraction: float = 0.15,
    val_fraction: float = 0.075,
    k: int = 5,
    seed: int = 0,
    strata_by: str = "",
) -> tuple[list[SplitRow], SplitReport]:
    """Assign every usable record to train/val/test and a cross-validation fold; ``strata_by``: a field of
    the records' ``extra`` (such as FairFace's ``race``) that stratifies the parts too."""
    rep = SplitReport(total=len(records))
    if hashes is None:
        hashes = [file_hash(r.path) for r in records]
    by_hash: dict[str, list[int]] = {}
    for i, h in enumerate(hashes):
        by_hash.setdefault(h, []).append(i)
    keep: list[int] = []
    for idx in by_hash.values():
        if len(idx) == 1:
            keep.append(idx[0])
            continue
        rep.duplicate_groups += 1
        labels = {(records[i].age, records[i].age_low, records[i].age_high, records[i].gender) for i in idx}
        if len(labels) > 1:
            rep.conflicting_groups += 1
            rep.conflicting_images_dropped += len(idx)
            continue
        keep.append(idx[0])
        rep.duplicate_copies_removed += len(idx) - 1
    keep.sort()
    if keep and all(records[i].fold is not None for i in keep):
        # the dataset comes with its own (subject-exclusive) folds, e.g. Adience: keep them; fold 0
        # validates a plain training run, `agegender cv` rotates; there is no separate test part
        rows = [SplitRow(records[i].path, hashes[i], "val" if records[i].fold == 0 else "train",
                         int(records[i].fold)) for i in keep]  # type: ignore[arg-type]
        rows.sort(key=lambda r: r.path)
        for r in rows:
            rep.parts[r.part] = rep.parts.get(r.part, 0) + 1
        return rows, rep
    # units that must stay together: subjects when known, otherwise single images
    units: dict[str, list[int]] = {}
    for i in keep:
        key = records[i].subject or f"#img{i}"
        units.setdefault(key, []).append(i)
    rng = np.random.default_rng(seed)
    strata: dict[tuple[int, str, str], list[str]] = {}
    for key, idx in units.items():
        r = records[idx[0]]
        group = str(r.extra.get(strata_by, "")) if strata_by else ""
        strata.setdefault((_band(r), str(r.gender), group), []).append(key)
    part_of: dict[str, tuple[str, int]] = {}
    for s in sorted(strata):
        keys = sorted(strata[s])
        rng.shuffle(keys)
        n = len(keys)
        n_test = int(round(n * test_fraction))
        n_val = int(round(n * val_fraction))
        for j, key in enumerate(keys):
            if j < n_test:
                part_of[key] = ("test", -1)
            else:
                jj = j - n_test
                part_of[key] = ("val" if jj < n_val else "train", jj % k)
    # tiny datasets: per-stratum rounding can leave a part empty; give it one unit from train
    if len(part_of) >= 3:
        for needed in ("val", "test"):
            if not any(p == needed for p, _ in part_of.values()):
                key = next(k for k in sorted(part_of) if part_of[k][0] == "train")
                part_of[key] = (needed, part_of[key][1] if needed == "val" else -1)
    rows = []
    for key, idx in units.items():
        part, fold = part_of[key]
        for i in idx:
            rows.append(SplitRow(records[i].path, hashes[i], part, fold))
    rows.sort(key=lambda r: r.path)
    for r in rows:
        rep.parts[r.part] = rep.parts.get(r.part, 0) + 1
    return rows, rep


def write_split(rows: list[SplitRow], path: str | Path) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "content_hash", "part", "fold"])
        for r in rows:
            w.writerow([r.path, r.content_hash, r.part, r.fold])


def read_split(path: str | Path) -> list[SplitRow]:
    with open(path, newline="") as fh:
        return [SplitRow(r["path"], r["content_hash"], r["part"], int(r["fold"])) for r in csv.DictReader(fh)]
