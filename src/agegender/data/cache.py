"""Aligned-crop cache: the inference detector + aligner run once per training image.

Crops are stored in shards (``shard_NNNNN.npz``) with a ``manifest.json`` holding the aligner and
detector settings and a fingerprint of each shard's source files. Building is parallel over
processes, resumable (finished shards whose fingerprint matches are kept) and invalidated when the
settings change (the whole cache) or a source file changes (that shard).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..align import align_face, center_crop
from ..detect.retinaface import RetinaFaceDetector
from ..errors import ImageLoadError
from ..io import load_image
from ..types import Detection

log = logging.getLogger(__name__)

#: 2: the detector colours greyscale photos and stretches washed-out ones for its search (2026-12-06), so
#: their landmarks changed
CACHE_VERSION = 2


@dataclass(frozen=True)
class CacheSettings:
    size: int = 112
    margin: float = 0.0
    score_threshold: float = 0.5
    pad: float = 0.2
    version: int = CACHE_VERSION
    border: str = "edge"  # crop fill past the photo (align.BORDERS)

    def key(self) -> str:
        d = asdict(self)
        if d["border"] == "edge":  # the default leaves keys of caches built before it existed unchanged
            del d["border"]
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def same_detector(self, other: CacheSettings) -> bool:
        """Whether ``other`` found its faces the same way (its landmarks can be reused for new crops)."""
        return (self.score_threshold, self.pad, self.version) == (other.score_threshold, other.pad, other.version)


@dataclass
class CropCache:
    crops: np.ndarray  # (N, size, size, 3) uint8
    paths: list[str]
    method: np.ndarray  # (N,) str: "detected" | "fallback" | "failed"
    det_score: np.ndarray  # (N,) float32 (0 for fallback)
    landmarks: np.ndarray  # (N, 5, 2) float32 in source-image pixels (nan for fallback)
    content_hash: list[str]

    def index(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.paths)}


def pick_face(dets: list[Detection], width: int, height: int) -> Detection | None:
    """The largest, most central face: area weighted down by distance from the image centre."""
    if not dets:
        return None
    cx, cy, diag = width / 2.0, height / 2.0, float(np.hypot(width, height))

    def score(d: Detection) -> float:
        bx, by = (d.box[0] + d.box[2]) / 2.0, (d.box[1] + d.box[3]) / 2.0
        return d.area * max(0.05, 1.0 - 2.0 * float(np.hypot(bx - cx, by - cy)) / diag)

    return max(dets, key=score)


def _fingerprint(paths: list[str]) -> str:
    h = hashlib.sha1()
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{p}|{st.st_size}|{int(st.st_mtime)}\n".encode())
        except OSError:
            h.update(f"{p}|missing\n".encode())
    return h.hexdigest()


Known = dict[str, tuple[str, float, np.ndarray]]  # path -> (method, detector score, landmarks)


def _process_shard(args: tuple[list[str], CacheSettings, str, Known | None]) -> str:
    """Crop one shard's photos: detect the face, or reuse the faces another cache found (``known``)."""
    paths, settings, out_file, known = args
    det = None if known else RetinaFaceDetector(score_threshold=settings.score_threshold, pad=settings.pad, threads=1)
    n = len(paths)
    crops = np.zeros((n, settings.size, settings.size, 3), np.uint8)
    method = np.empty(n, dtype="<U8")
    scores = np.zeros(n, np.float32)
    lms = np.full((n, 5, 2), np.nan, np.float32)
    hashes = []
    for i, p in enumerate(paths):
        try:
            data = Path(p).read_bytes()
            hashes.append(hashlib.sha1(data).hexdigest())
            img = load_image(data, name=p)
        except (OSError, ImageLoadError) as exc:
            log.warning("cache: %s", exc)
            hashes.append("")
            method[i] = "failed"
            continue
        if known:
            how, score, points = known[p]
            if how == "detected":
                face = Detection(box=(0.0, 0.0, 0.0, 0.0), score=score, landmarks=points)
            else:
                face = None
        else:
            face = pick_face(det.detect(img), img.shape[1], img.shape[0])
        if face is not None:
            crops[i] = align_face(img, face.landmarks, settings.size, settings.margin, border=settings.border)
            method[i], scores[i], lms[i] = "detected", face.score, face.landmarks
        else:
            crops[i] = center_crop(img, settings.size, settings.margin, border=settings.border)
            method[i] = "fallback"
    tmp = f"{out_file}.{os.getpid()}.tmp.npz"  # two builders of one cache never share a temporary file
    np.savez(tmp, crops=crops, paths=np.array(paths), method=method, det_score=scores, landmarks=lms,
             content_hash=np.array(hashes))
    os.replace(tmp, out_file)
    return out_file


def build_cache(
    paths: list[str],
    out_dir: str | Path,
    settings: CacheSettings = CacheSettings(),
    workers: int = 2,
    shard_size: int = 500,
    progress: bool | None = None,
    landmarks_from: str | Path | None = None,
) -> CropCache:
    """Detect, align and store crops for ``paths``; reuse what an earlier run already built.

    ``landmarks_from``: another cache of the same photos whose detector settings match (size, margin
    and border may differ): its landmarks are warped again instead of detecting every face anew.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    manifest = {}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("settings_key") != settings.key():
            log.info("cache settings changed: rebuilding %s", out)
            for f in out.glob("shard_*.npz"):
                f.unlink()
            manifest = {}
    shards = [paths[i : i + shard_size] for i in range(0, len(paths), shard_size)]
    old = manifest.get("shards", {})
    todo = []
    entries = {}
    for k, chunk in enumerate(shards):
        name = f"shard_{k:05d}.npz"
        fp = _fingerprint(chunk)
        entries[name] = fp
        if (out / name).exists() and (old.get(name) == fp or (name in old and _same_content(out / name, chunk))):
            continue
        todo.append((chunk, settings, str(out / name), None))
    manifest = {"settings": asdict(settings), "settings_key": settings.key(), "shards": entries,
                "count": len(paths)}
    if todo and landmarks_from:
        known = _known_faces(Path(landmarks_from), settings)
        if known is not None and all(p in known for t in todo for p in t[0]):
            todo = [(chunk, s, name, {p: known[p] for p in chunk}) for chunk, s, name, _ in todo]
            log.info("cache: reusing the faces found in %s", landmarks_from)
        else:
            log.warning("cache: %s does not hold these photos' faces; detecting again", landmarks_from)
    log.info("cache: %d of %d shards to build", len(todo), len(shards))
    if todo:
        from tqdm import tqdm

        bar = tqdm(total=sum(len(t[0]) for t in todo), unit="img", desc="aligning",
                   disable=not (sys.stderr.isatty() if progress is None else progress))
        if workers > 1:
            with ProcessPoolExecutor(workers) as ex:
                for (chunk, *_), _done in zip(todo, ex.map(_process_shard, todo)):
                    bar.update(len(chunk))
        else:
            for t in todo:
                _process_shard(t)
                bar.update(len(t[0]))
        bar.close()
    # stale shards beyond the current count
    for f in out.glob("shard_*.npz"):
        if f.name not in entries:
            f.unlink()
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return load_cache(out)


def _same_content(shard: Path, paths: list[str]) -> bool:
    """Whether a shard was built from exactly these files, byte for byte (their times or mount changed)."""
    try:
        with np.load(shard) as part:
            stored_paths, stored = [str(x) for x in part["paths"]], [str(x) for x in part["content_hash"]]
    except (OSError, ValueError, KeyError):
        return False
    if stored_paths != paths:
        return False
    for p, h in zip(paths, stored):
        try:
            if hashlib.sha1(Path(p).read_bytes()).hexdigest() != h:
                return False
        except OSError:
            if h:
                return False
    return True


def _known_faces(other: Path, settings: CacheSettings) -> Known | None:
    """The faces another cache found, by path, when its detector settings match ``settings``."""
    try:
        manifest = json.loads((other / "manifest.json").read_text())
        theirs = CacheSettings(**manifest["settings"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not settings.same_detector(theirs):
        return None
    known: Known = {}
    for name in sorted(manifest["shards"]):
        with np.load(other / name) as part:
            for p, how, sc, lm in zip(part["paths"], part["method"], part["det_score"], part["landmarks"]):
                known[str(p)] = (str(how), float(sc), lm.astype(np.float64))
    return known


def load_cache(out_dir: str | Path) -> CropCache:
    out = Path(out_dir)
    manifest = json.loads((out / "manifest.json").read_text())
    parts = [np.load(out / name) for name in sorted(manifest["shards"])]
    return CropCache(
        crops=np.concatenate([p["crops"] for p in parts]),
        paths=[str(x) for p in parts for x in p["paths"]],
        method=np.concatenate([p["method"] for p in parts]),
        det_score=np.concatenate([p["det_score"] for p in parts]),
        landmarks=np.concatenate([p["landmarks"] for p in parts]),
        content_hash=[str(x) for p in parts for x in p["content_hash"]],
    )
