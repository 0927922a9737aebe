"""Generated datasets for tests (no real faces needed: the cache falls back to centre crops)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image


def make_csv_dataset(root: Path, n: int = 40, size: int = 64, seed: int = 0) -> Path:
    """``n`` small images with an age and a gender each, plus ``labels.csv``; returns the CSV path."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        gender = "female" if i % 2 else "male"
        age = int(rng.integers(1, 90))
        # brightness tied to age and a stripe tied to gender so a model has something to learn
        img = np.full((size, size, 3), 40 + 2 * age, np.uint8)
        if gender == "female":
            img[:, : size // 4] = 255
        img = np.clip(img.astype(int) + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)
        name = f"img_{i:03d}.jpg"
        Image.fromarray(img).save(root / name, quality=90)
        rows.append((name, age, gender))
    path = root / "labels.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "age", "gender"])
        w.writerows(rows)
    return path


def write_config(tmp: Path, csv_path: Path, **overrides: object) -> Path:
    import yaml

    from agegender.train.legacy_config import migrate

    cfg = {
        "name": "tiny", "model": "attn_mbv2", "pretrained": False, "input_size": 112, "epochs": 1,
        "batch_size": 8, "lr": 0.001, "warmup_epochs": 0.5, "threads": 1, "out_dir": str(tmp / "run"),
        "data": {"dataset": "csv", "root": str(csv_path), "split": str(tmp / "split.csv"),
                 "cache": str(tmp / "cache")},
    }
    cfg.update(overrides)
    p = tmp / "config.yaml"
    # callers name keys as flat words (``epochs=2``, ``reencode=0.3``); written in the nested form
    p.write_text(yaml.safe_dump(migrate(cfg, "tests")))
    return p
