"""Near-identical twins: the same photo re-encoded, resized or re-cropped a little, which byte hashes miss.

Each image becomes a small grey thumbnail, centred and scaled to unit norm; two images whose thumbnails
correlate above a threshold are twins, and twins of twins form one group (union-find). Splits keep a
group on one side: training leaves out any member whose twin is in the validation or test part.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def thumbnails(paths: Sequence[str], size: int = 16, progress: bool = True) -> np.ndarray:
    """(N, size*size) float32 grey thumbnails, zero-mean and unit-norm (an unreadable file gets zeros)."""
    from PIL import Image
    from tqdm import tqdm

    out = np.zeros((len(paths), size * size), np.float32)
    for i, p in enumerate(tqdm(paths, desc="thumbnails", disable=not progress, mininterval=10)):
        try:
            with Image.open(p) as im:
                im.draft("L", (size * 4, size * 4))
                v = np.asarray(im.convert("L").resize((size, size), Image.BILINEAR), np.float32).ravel()
        except OSError as exc:
            log.warning("twins: %s: %s", p, exc)
            continue
        v = v - v.mean()
        n = float(np.linalg.norm(v))
        out[i] = v / n if n > 1e-6 else 0.0
    return out


def twin_pairs(thumbs: np.ndarray, threshold: float = 0.97, block: int = 2048) -> list[tuple[int, int, float]]:
    """Index pairs (i < j) whose thumbnails correlate at or above ``threshold``."""
    pairs: list[tuple[int, int, float]] = []
    for s in range(0, len(thumbs), block):
        sim = thumbs[s : s + block] @ thumbs.T
        ii, jj = np.nonzero(sim >= threshold)
        for i, j in zip(ii.tolist(), jj.tolist()):
            if s + i < j:
                pairs.append((s + i, j, float(sim[i, j])))
    return pairs


def group_pairs(n: int, pairs: list[tuple[int, int, float]]) -> list[list[int]]:
    """Connected groups (two or more members) of the pair graph."""
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, _ in pairs:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def write_twins(path: str | Path, names: Sequence[str], groups: list[list[int]]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["group", "path"])
        for k, g in enumerate(groups):
            for i in g:
                w.writerow([k, names[i]])


def read_twins(path: str | Path) -> dict[int, list[str]]:
    """Group id -> member paths (as written: relative to the dataset root)."""
    groups: dict[int, list[str]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            groups.setdefault(int(row["group"]), []).append(row["path"])
    return groups
