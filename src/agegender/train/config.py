"""Training configuration: a YAML file plus ``--set key=value`` overrides, as a typed dataclass."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ..errors import DatasetError


@dataclass
class DataConfig:
    dataset: str = "utkface"  # utkface | adience | fairface | imdbwiki | csv
    root: str = "../shared/data/utkface"
    split: str = "configs/splits/utkface.csv"
    cache: str = "cache/utkface-112"
    limit: int = 0  # use at most this many training images (0: all); for smoke tests


@dataclass
class TrainConfig:
    name: str = "attn_mbv2-utkface"
    model: str = "attn_mbv2"
    pretrained: bool = True
    input_size: int = 112
    margin: float = 0.0
    epochs: int = 18
    batch_size: int = 64
    lr: float = 6e-4
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_sigma: float = 2.0
    age_l1_weight: float = 0.1
    gender_weight: float = 1.0
    label_smoothing: float = 0.05
    dropout: float = 0.2
    degrade: float = 0.0  # probability of each camera/encoder degradation in augmentation (0: off)
    patience: int = 6
    #: knowledge distillation: a teacher model (built-in name such as "default", a card or an ONNX file
    #: with its card); its probabilities on the un-augmented training crops become soft targets
    teacher: str = ""
    distill: float = 0.0  # weight of the teacher's soft targets (0: plain labels, 1: teacher only)
    #: weight, within the teacher's gender targets, of a second gender teacher: dlib face-recognition
    #: embeddings + cross-fitted logistic regression (train/facefeat.py; needs the facefeat extra)
    face_teacher: float = 0.0
    seed: int = 0
    threads: int = 2
    out_dir: str = "runs/attn_mbv2-utkface"
    val_part: str = "val"  # which split part validates (cv overrides with a fold)
    cv_fold: int = -1  # >= 0: train on the other folds, validate on this one
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _coerce(value: str, current: Any) -> Any:
    if isinstance(current, bool):
        return value.lower() in ("1", "true", "yes", "on")
    if isinstance(current, int):
        return int(value)
    if isinstance(current, float):
        return float(value)
    return value


def apply_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    for item in overrides:
        if "=" not in item:
            raise DatasetError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        target: Any = cfg
        parts = key.split(".")
        for p in parts[:-1]:
            if not hasattr(target, p):
                raise DatasetError(f"unknown config key {key!r}")
            target = getattr(target, p)
        if not hasattr(target, parts[-1]):
            raise DatasetError(f"unknown config key {key!r}")
        setattr(target, parts[-1], _coerce(value, getattr(target, parts[-1])))
    return cfg


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    cfg = TrainConfig()
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise DatasetError(f"config not found: {p}")
        raw = yaml.safe_load(p.read_text()) or {}
        if not isinstance(raw, dict):
            raise DatasetError(f"{p}: a config must be a mapping")
        known = {f.name for f in fields(TrainConfig)}
        for k, v in raw.items():
            if k not in known:
                raise DatasetError(f"{p}: unknown config key {k!r}")
            if k == "data":
                dk = {f.name for f in fields(DataConfig)}
                bad = set(v) - dk
                if bad:
                    raise DatasetError(f"{p}: unknown data keys {sorted(bad)}")
                cfg.data = DataConfig(**v)
            else:
                setattr(cfg, k, type(getattr(cfg, k))(v) if getattr(cfg, k) is not None else v)
    return apply_overrides(cfg, overrides or [])
