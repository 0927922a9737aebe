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


def score_probs(p_gender: np.ndarray, p_age: np.ndarray, gender: np.ndarray, age: np.ndarray) -> dict[str, float]:
    """Gender decisions right (of the faces with a known gender), age MAE of the expected age, and the
    training's early-stopping objective (MAE + 20 x gender error)."""
    known = gender >= 0
    right = int(((p_gender.argmax(1) == gender) & known).sum())
    n = int(known.sum())
    mae = float(np.abs(p_age @ np.arange(p_age.shape[1]) - age).mean())
    return {"gender_right": right, "n": n, "gender_accuracy": right / n, "age_mae": mae,
            "objective": mae + 20 * (1 - right / n)}
