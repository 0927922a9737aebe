"""Training arrays: annotation table + fixed split + aligned-crop cache -> in-memory tensors."""

from __future__ import annotations

import csv
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
from .config import DataConfig, TrainConfig
from .levers import needs_windows

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
    #: (N,) long: index of each row's source in ``source_names`` (training on several sources)
    source: torch.Tensor | None = None
    source_names: tuple[str, ...] = ()
    #: (N, 4, 2) float32: where each crop's photo lies in the crop (align.visible_window); nan: unknown
    window: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, idx: np.ndarray | list[int]) -> Arrays:
        ii = torch.as_tensor(np.asarray(idx, dtype=np.int64))
        return Arrays(self.crops[ii], self.age[ii], self.age_low[ii], self.age_high[ii], self.gender[ii],
                      [self.paths[i] for i in ii.tolist()], [self.records[i] for i in ii.tolist()],
                      None if self.soft_gender is None else self.soft_gender[ii],
                      None if self.soft_age is None else self.soft_age[ii],
                      None if self.source is None else self.source[ii], self.source_names,
                      None if self.window is None else self.window[ii])

    def by_source(self) -> dict[str, Arrays]:
        """One ``Arrays`` per source (the whole set under its one name when there is a single source)."""
        if self.source is None or len(self.source_names) <= 1:
            return {self.source_names[0] if self.source_names else "data": self}
        return {name: self.subset(np.flatnonzero(self.source.numpy() == k))
                for k, name in enumerate(self.source_names)}


def concat_arrays(parts: list[Arrays], names: list[str]) -> Arrays:
    """Rows of several sources in one ``Arrays``, each tagged with its source."""
    src = torch.cat([torch.full((len(a),), k, dtype=torch.long) for k, a in enumerate(parts)])
    return Arrays(torch.cat([a.crops for a in parts]), torch.cat([a.age for a in parts]),
                  torch.cat([a.age_low for a in parts]), torch.cat([a.age_high for a in parts]),
                  torch.cat([a.gender for a in parts]), [p for a in parts for p in a.paths],
                  [r for a in parts for r in a.records], source=src, source_names=tuple(names),
                  window=None if any(a.window is None for a in parts) else torch.cat([a.window for a in parts]))


def _to_arrays(records: list[Record], crops: np.ndarray) -> Arrays:
    age = np.array([r.age if (r.age is not None and r.age_low == r.age_high) else -1.0 for r in records], np.float32)
    lo = np.array([r.age_low if r.age_low is not None else -1.0 for r in records], np.float32)
    hi = np.array([r.age_high if r.age_high is not None else -1.0 for r in records], np.float32)
    gender = np.array([r.gender_index for r in records], np.int64)
    return Arrays(torch.from_numpy(crops), torch.from_numpy(age), torch.from_numpy(lo), torch.from_numpy(hi),
                  torch.from_numpy(gender), [r.path for r in records], records)


def photo_windows(records: list[Record], landmarks: np.ndarray, cfg: TrainConfig) -> np.ndarray:
    """Where each record's photo lies in its crop (align.visible_window), (N, 4, 2); nan without landmarks."""
    from PIL import Image

    from ..align import visible_window

    out = np.full((len(records), 4, 2), np.nan, np.float32)
    for i, (rec, lm) in enumerate(zip(records, landmarks)):
        if np.isnan(lm).any():
            continue
        try:
            with Image.open(rec.path) as im:
                w, h = im.size
        except OSError:
            continue
        out[i] = visible_window(lm, w, h, cfg.model.input_size, cfg.model.margin)
    return out


def build_caches(cfg: TrainConfig) -> list[str]:
    """Build (or check) the crop cache and split of every source of ``cfg`` -- what ``agegender train``
    reads first, done ahead (``agegender cache``); one summary line per source and part."""
    arrays = load_arrays(cfg, parts=("train", "val", "test"))
    return [f"{name} {part}: {len(a)} images" for part in ("train", "val", "test")
            for name, a in arrays[part].by_source().items()]


def source_name(d: DataConfig) -> str:
    return d.name or d.dataset


def load_arrays(cfg: TrainConfig, parts: tuple[str, ...] = ("train", "val", "test")) -> dict[str, Arrays]:
    """Crops and labels for each split part of every training source (``cfg.all_sources()``), rows tagged
    with their source (``Arrays.source``); ``cv_fold >= 0``: train/val are the other folds / that fold."""
    sources = cfg.all_sources()
    names = [source_name(d) for d in sources]
    if len(set(names)) != len(names):
        raise DatasetError(f"two training sources share a name: {names}")
    loaded = [_load_source(d, cfg, parts) for d in sources]
    return {p: concat_arrays([x[p] for x in loaded], names) for p in parts}


def _left_out(d: DataConfig, rows: list, base: str) -> set[str]:
    """Relative paths of training images to leave out: the ``drop`` list, and twins of images in other parts."""
    out: set[str] = set()
    if d.drop:
        with open(d.drop, newline="") as fh:
            out |= {os.path.relpath(r["path"], base) if os.path.isabs(r["path"]) else r["path"]
                    for r in csv.DictReader(fh)}
    if d.twins:
        from ..data.twins import read_twins

        part_of = {row.path: row.part for row in rows}
        groups = read_twins(d.twins)
        for members in groups.values():
            held = {m for m in members if part_of.get(m) in ("val", "test")}
            if held:
                out |= {m for m in members if part_of.get(m) == "train"}
    return out


def _load_source(d: DataConfig, cfg: TrainConfig, parts: tuple[str, ...]) -> dict[str, Arrays]:
    records = load_records(d.dataset, d.root)
    if not records:
        raise DatasetError(f"no usable records in {d.root}")
    settings = CacheSettings(size=cfg.model.input_size, margin=cfg.model.margin, border=cfg.model.border)
    cache = build_cache([r.path for r in records], d.cache, settings, workers=max(1, min(2, os.cpu_count() or 1)),
                        landmarks_from=d.landmarks or None)
    index = cache.index()
    base = d.root if os.path.isdir(d.root) else os.path.dirname(os.path.abspath(d.root))
    split_path = Path(d.split)
    if not split_path.exists():
        hashes = [cache.content_hash[index[r.path]] for r in records]
        if d.dataset == "aaf":
            from ..data.aaf import aaf_split_rows

            rows, rep = aaf_split_rows(records, hashes, seed=cfg.seed), "official train/val kept"
        elif d.dataset == "fairface":  # no official split in the training part: val 10 %, test 5 %
            rows, rep = make_split(records, hashes, test_fraction=0.05, val_fraction=0.10, seed=cfg.seed,
                                   strata_by="race")
        else:
            rows, rep = make_split(records, hashes, seed=cfg.seed)
        log.info("new split %s: %s", split_path, rep)
        split_path.parent.mkdir(parents=True, exist_ok=True)
        for row in rows:
            row.path = os.path.relpath(row.path, base)
        write_split(rows, split_path)
    rows = read_split(split_path)
    left_out = _left_out(d, rows, base) if "train" in parts else set()
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
        if part == "train" and row.path in left_out:
            continue
        if part in out:
            out[part].append(index[rec.path])
            sel_records[part].append(rec)
    result = {}
    for p in parts:
        idx = out[p]
        if p == "train" and d.limit:
            idx, sel_records[p] = idx[: d.limit], sel_records[p][: d.limit]
        ii = np.asarray(idx, dtype=np.int64)
        result[p] = _to_arrays(sel_records[p], cache.crops[ii])
        if needs_windows(cfg):
            result[p].window = torch.from_numpy(photo_windows(sel_records[p], cache.landmarks[ii], cfg))
        log.info("%s %s: %d images%s", source_name(d), p, len(idx),
                 f" ({len(left_out)} left out: noisy labels, twins)" if p == "train" and left_out else "")
    return result
