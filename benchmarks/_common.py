"""Shared helpers for the benchmark scripts (not part of the package)."""

from __future__ import annotations

import os
import platform
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
UTK_ROOT = str(SHARED / "data" / "utkface")
UTK_SPLIT = str(REPO / "configs" / "splits" / "utkface.csv")
PEER_SCRIPTS = SHARED / "peers"
#: where the peers are set up (one folder each, outside the repository); override with AGEGENDER_PEERS_ENV
PEERS_ENV = Path(os.environ.get("AGEGENDER_PEERS_ENV", str(REPO.parent / "peers-env")))
#: extensions every peer script reads (the Node scripts take only JPEG and PNG)
PEER_EXTS = (".jpg", ".jpeg", ".png")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    import onnxruntime

    return {
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "onnxruntime": onnxruntime.__version__,
        "platform": platform.platform(),
    }


def agegender_command() -> list[str]:
    """The ``agegender`` console script of the interpreter running this file."""
    exe = Path(sys.executable).parent / "agegender"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "agegender.cli"]


def every_kth(items: Sequence[Any], n: int) -> list[Any]:
    """``n`` items spread evenly over ``items`` (every k-th one); all of them when ``n`` <= 0."""
    if n <= 0 or n >= len(items):
        return list(items)
    k = len(items) / n
    return [items[int(i * k)] for i in range(n)]


_SAFE = re.compile(r"^[A-Za-z0-9._+\-]+$")


def link_images(paths: Sequence[str], folder: Path) -> dict[str, str]:
    """Symlink ``paths`` into ``folder``; returns {link name: original path}.

    The original base name is kept when it is unique and CSV-safe (the Node peers write CSV rows by
    joining with commas, without quoting); otherwise the link is named ``NNNNNN<ext>``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    out: dict[str, str] = {}
    for i, p in enumerate(paths):
        base = os.path.basename(p)
        name = base if _SAFE.match(base) and base not in used else f"{i:06d}{os.path.splitext(base)[1].lower()}"
        used.add(name)
        os.symlink(os.path.abspath(p), folder / name)
        out[name] = p
    return out


def median_p90(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(np.median(a)), float(np.percentile(a, 90))


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def file_mb(paths: Sequence[Path]) -> float:
    return sum(p.stat().st_size for p in paths) / 1e6


def cached_parts(config: str, parts: tuple[str, ...], threads: int) -> dict[str, Any]:
    """Cached aligned crops and labels of split parts, as training reads them (needs the ``train`` extra)."""
    os.chdir(REPO)
    from agegender.train.config import load_config
    from agegender.train.dataset import load_arrays

    return load_arrays(load_config(config, [f"threads={threads}"]), parts=parts)


def framed_crops(config: str, part: str, data: Any, framings: Sequence[tuple[float, str]],
                 member_cfgs: Sequence[dict[str, Any]]) -> np.ndarray:
    """``data`` (``cached_parts(config, (part,), ...)[part]``) as crops of every framing, stacked on the
    channel axis, row for row: each framing other than the config's is read from the crop cache of the
    member config trained on it (``agegender.train.views``)."""
    from agegender.train.config import load_config
    from agegender.train.views import framed_arrays, framing_of

    base = load_config(config)
    out = []
    for f in framings:
        if tuple(f) == (base.margin, base.border):
            out.append(data.crops.numpy())
            continue
        member = next((c for c in member_cfgs if framing_of(c) == tuple(f)), None)
        if member is None:
            raise SystemExit(f"no training config on the framing {f}: cannot find its crop cache")
        out.append(framed_arrays(base, member, (part,), like={part: data})[part].crops.numpy())
    return out[0] if len(out) == 1 else np.concatenate(out, axis=-1)


def score_probs(p_gender: np.ndarray, p_age: np.ndarray, gender: np.ndarray, age: np.ndarray) -> dict[str, float]:
    """Gender decisions right (of the faces with a known gender), age MAE of the expected age, and the
    training's early-stopping objective (MAE + 20 x gender error)."""
    known = gender >= 0
    right = int(((p_gender.argmax(1) == gender) & known).sum())
    n = int(known.sum())
    mae = float(np.abs(p_age @ np.arange(p_age.shape[1]) - age).mean())
    return {"gender_right": right, "n": n, "gender_accuracy": right / n, "age_mae": mae,
            "objective": mae + 20 * (1 - right / n)}


# -- photo sets for the speed benchmark (made from UTKFace test crops into a folder outside the repo) --------

#: kinds of photo the speed benchmark makes: name -> what it is
PHOTO_KINDS = {
    "utk": "UTKFace test crops as they are (200x200 JPEG, one tight face)",
    "web448": "448x448 web photos: a UTKFace crop scaled 1.8-2.6x, the face touching or cut by one border, "
              "the rest edge-padded (JPEG q90)",
    "vga": "640x480 photos: one UTKFace crop scaled to 120-260 px on a smooth noisy background (JPEG q90)",
    "group1080": "1920x1080 group photos: 8 UTKFace crops of 90-260 px on a smooth noisy background (JPEG q90)",
}


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A smooth colour gradient with a little noise (no face-like structure)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c0, c1, c2 = (rng.uniform(40, 215, 3) for _ in range(3))
    t = (xx / w)[..., None]
    s = (yy / h)[..., None]
    img = c0 * (1 - t) * (1 - s) + c1 * t + c2 * s * (1 - t)
    img += rng.normal(0, 6, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_photo(kind: str, crops: Sequence[str], rng: np.random.Generator) -> Any:
    """One synthetic photo of ``kind`` (a PIL image) from UTKFace crop paths (uses ``crops[0]`` or more)."""
    from PIL import Image

    def load(p: str, side: int) -> np.ndarray:
        with Image.open(p) as im:
            return np.asarray(im.convert("RGB").resize((side, side), Image.BICUBIC))

    if kind == "web448":
        side = 448
        s = int(round(200 * rng.uniform(1.8, 2.6)))
        face = load(crops[0], s)
        axis, far = int(rng.integers(2)), bool(rng.integers(2))
        cut = int(rng.uniform(0.0, 0.2) * s)  # how much of the crop falls outside the picture
        along = -cut if not far else side - s + cut
        across = int(rng.integers(min(0, side - s), max(0, side - s) + 1))
        ox, oy = (along, across) if axis == 0 else (across, along)
        # crop what falls inside the canvas, then edge-pad the rest
        x0, y0, x1, y1 = max(0, -ox), max(0, -oy), min(s, side - ox), min(s, side - oy)
        part = face[y0:y1, x0:x1]
        px, py = max(0, ox), max(0, oy)
        out = np.pad(part, ((py, side - py - part.shape[0]), (px, side - px - part.shape[1]), (0, 0)), mode="edge")
        return Image.fromarray(out)
    if kind == "vga":
        canvas = _background(rng, 640, 480)
        s = int(rng.integers(120, 261))
        x, y = int(rng.integers(0, 640 - s)), int(rng.integers(0, 480 - s))
        canvas[y : y + s, x : x + s] = load(crops[0], s)
        return Image.fromarray(canvas)
    if kind == "group1080":
        canvas = _background(rng, 1920, 1080)
        # a 4 x 2 grid of cells, one face per cell at a random size and place within it
        for k in range(8):
            cx, cy = (k % 4) * 480, (k // 4) * 540
            s = int(rng.integers(90, 261))
            x, y = cx + int(rng.integers(0, 480 - s)), cy + int(rng.integers(0, 540 - s))
            canvas[y : y + s, x : x + s] = load(crops[k % len(crops)], s)
        return Image.fromarray(canvas)
    raise ValueError(f"unknown photo kind {kind!r}")


def make_photo_set(kind: str, sources: Sequence[str], folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` photos of ``kind`` in ``folder`` (made once; reused when already there). ``utk`` links the crops."""
    folder.mkdir(parents=True, exist_ok=True)
    per = 8 if kind == "group1080" else 1
    chosen = every_kth(list(sources), n * per)
    if kind == "utk":
        if not any(folder.iterdir()):
            link_images(chosen, folder)
        return sorted(folder.iterdir())
    rng = np.random.default_rng(seed)
    out = []
    lines = []
    for i in range(n):
        path = folder / f"{kind}-{i:04d}.jpg"
        picks = [chosen[(i * per + j) % len(chosen)] for j in range(per)]
        img = make_photo(kind, picks, rng)  # always drawn, so photo i is the same whatever exists
        if not path.is_file():
            img.save(path, quality=90)
        out.append(path)
        lines.append(f"{path.name},{';'.join(picks)}")
    (folder.parent / f"{kind}-sources.csv").write_text("photo,sources\n" + "\n".join(lines) + "\n")
    return out
