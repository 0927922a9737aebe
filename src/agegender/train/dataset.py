"""Training arrays: annotation table + fixed split + aligned-crop cache -> in-memory tensors."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.cache import CacheSettings, build_cache
from ..data.datasets import load_records
from ..data.records import Record
from ..data.splits import make_split, read_split, write_split
from ..errors import DatasetError
from .config import TrainConfig

log = logging.getLogger(__name__)


@dataclass
class Arrays:
    crops: torch.Tensor  # (N, H, W, 3) uint8
    age: torch.Tensor  # (N,) float; -1 where only a range is known
    age_low: torch.Tensor
    age_high: torch.Tensor
    gender: torch.Tensor  # (N,) long; 0 male, 1 female, -1 unknown
    paths: list[str]
    records: list[Record]
    #: a teacher's probabilities (distillation): (N, 2) gender and (N, 101) age, or None
    soft_gender: torch.Tensor | None = None
    soft_age: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, idx: np.ndarray | list[int]) -> Arrays:
        ii = torch.as_tensor(np.asarray(idx, dtype=np.int64))
        return Arrays(self.crops[ii], self.age[ii], self.age_low[ii], self.age_high[ii], self.gender[ii],
                      [self.paths[i] for i in ii.tolist()], [self.records[i] for i in ii.tolist()],
                      None if self.soft_gender is None else self.soft_gender[ii],
                      None if self.soft_age is None else self.soft_age[ii])


def _to_arrays(records: list[Record], crops: np.ndarray) -> Arrays:
    age = np.array([r.age if (r.age is not None and r.age_low == r.age_high) else -1.0 for r in records], np.float32)
    lo = np.array([r.age_low if r.age_low is not None else -1.0 for r in records], np.float32)
    hi = np.array([r.age_high if r.age_high is not None else -1.0 for r in records], np.float32)
    gender = np.array([r.gender_index for r in records], np.int64)
    return Arrays(torch.from_numpy(crops), torch.from_numpy(age), torch.from_numpy(lo), torch.from_numpy(hi),
                  torch.from_numpy(gender), [r.path for r in records], records)


def load_arrays(cfg: TrainConfig, parts: tuple[str, ...] = ("train", "val", "test")) -> dict[str, Arrays]:
    """Crops and labels for each split part (``cv_fold >= 0``: train/val are the other folds / that fold)."""
    d = cfg.data
    records = load_records(d.dataset, d.root)
    if not records:
        raise DatasetError(f"no usable records in {d.root}")
    settings = CacheSettings(size=cfg.input_size, margin=cfg.margin)
    cache = build_cache([r.path for r in records], d.cache, settings, workers=max(1, min(2, os.cpu_count() or 1)))
    index = cache.index()
    base = d.root if os.path.isdir(d.root) else os.path.dirname(os.path.abspath(d.root))
    split_path = Path(d.split)
    if not split_path.exists():
        hashes = [cache.content_hash[index[r.path]] for r in records]
        rows, rep = make_split(records, hashes, seed=cfg.seed)
        log.info("new split %s: %s", split_path, rep)
        split_path.parent.mkdir(parents=True, exist_ok=True)
        for row in rows:
            row.path = os.path.relpath(row.path, base)
        write_split(rows, split_path)
    rows = read_split(split_path)
    by_rel = {os.path.relpath(r.path, base): r for r in records}
    out: dict[str, list[int]] = {p: [] for p in parts}
    sel_records: dict[str, list[Record]] = {p: [] for p in parts}
    for row in rows:
        rec = by_rel.get(row.path)
        if rec is None:
            continue
        if cfg.cv_fold >= 0 and row.part != "test":
            part = "val" if row.fold == cfg.cv_fold else "train"
        else:
            part = row.part
        if part in out:
            out[part].append(index[rec.path])
            sel_records[part].append(rec)
    result = {}
    for p in parts:
        idx = out[p]
        if p == "train" and d.limit:
            idx, sel_records[p] = idx[: d.limit], sel_records[p][: d.limit]
        result[p] = _to_arrays(sel_records[p], cache.crops[np.asarray(idx, dtype=np.int64)])
        log.info("%s: %d images", p, len(idx))
    return result
