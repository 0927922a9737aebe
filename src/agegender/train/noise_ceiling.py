"""Write a model's noise ceiling into its card: the grain level below which most of its training crops lie.

Inference smooths crops above the ceiling back under it (``agegender.denoise``); the ceiling belongs to the
model because it describes the photos the model learned from.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ..card import ModelCard
from ..denoise import noise_ceiling
from ..errors import ModelCardError
from .config import load_config
from .dataset import load_arrays

log = logging.getLogger(__name__)


def training_crops(config: str | Path, limit: int = 0, seed: int = 0) -> np.ndarray:
    """The train part's aligned crops of every source of a training config (tight view), at most ``limit``
    (0: all), drawn with a fixed seed."""
    crops = load_arrays(load_config(config), parts=("train",))["train"].crops.numpy()[..., :3]
    if limit and limit < len(crops):
        crops = crops[np.sort(np.random.default_rng(seed).choice(len(crops), limit, replace=False))]
    return crops


def set_noise_ceiling(card_path: str | Path, configs: list[str], percentile: float | None,
                      limit: int = 0) -> float | None:
    """Measure the ceiling on the configs' training crops and write it into the card (``percentile`` None:
    remove it). The weights and their digest are untouched. Returns the ceiling written."""
    p = Path(card_path)
    d = json.loads(p.read_text())
    ModelCard.from_dict(d, where=str(p))  # refuse a malformed card before measuring
    if percentile is None:
        d["input"].pop("noise_ceiling", None)
        value = None
    else:
        if not configs:
            raise ModelCardError("a noise ceiling needs the training config(s) whose crops it describes")
        crops = np.concatenate([training_crops(c, limit) for c in configs])
        value = round(noise_ceiling(crops, percentile), 3)
        d["input"]["noise_ceiling"] = value
        d.setdefault("training", {})["noise_ceiling"] = {
            "percentile": percentile, "configs": [str(c) for c in configs], "crops": int(len(crops))}
        log.info("%s: noise ceiling %.3f (%g th percentile of %d training crops)", p, value, percentile, len(crops))
    ModelCard.from_dict(d, where=str(p))
    p.write_text(json.dumps(d, indent=2) + "\n")
    return value
