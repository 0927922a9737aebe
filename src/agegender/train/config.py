"""Training configuration: a YAML file plus ``--set key=value`` overrides, as a typed dataclass."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ..errors import DatasetError


@dataclass
class DataConfig:
    dataset: str = "utkface"  # utkface | aaf | adience | fairface | imdbwiki | csv
    name: str = ""  # the source's name in metrics and reports (default: the dataset)
    root: str = "../shared/data/utkface"
    split: str = "configs/splits/utkface.csv"
    cache: str = "cache/utkface-112"
    limit: int = 0  # use at most this many training images (0: all); for smoke tests
    #: share of each epoch's samples drawn from this source when training on several (``sources``)
    weight: float = 1.0
    #: a CSV of files to leave out of training (column ``path``; e.g. the label-noise report of
    #: ``agegender clean``); validation and test keep every image
    drop: str = ""
    #: a twins CSV (``agegender twins``): training images with a near-identical twin in another part are left out
    twins: str = ""
    #: another crop cache of the same photos (other size, margin or border) whose detected faces are reused
    #: instead of running the detector again
    landmarks: str = ""
    #: this source's distillation teacher (as ``TrainConfig.teacher``); empty: the run's teacher; "none": labels only
    teacher: str = ""


@dataclass
class TrainConfig:
    name: str = "attn_mbv2-utkface"
    model: str = "attn_mbv2"
    pretrained: bool = True
    input_size: int = 112
    margin: float = 0.0
    #: crop fill past the photo: "edge" (repeat its pixels) or "grey" (align.BORDERS); goes into the card
    border: str = "edge"
    #: context that does not give the source away: the probability that a training crop is shown only
    #: within the photo window of a random tightly cropped photo (UTKFace's 200x200 crops), grey outside,
    #: so that a wide crop's grey border does not mean "UTKFace"; needs border "grey" and margin > 0
    context_mask: float = 0.0
    #: hair dropout: the probability that a training crop has bands along its sides (5-15 % deep, where
    #: a tight crop holds the hair) greyed out, so the network also reads faces whose hair is cut away
    #: or covered (train/context.py ``hide_borders``); 0: off
    hair_dropout: float = 0.0
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
    #: with its card); its probabilities on the un-augmented training crops become soft targets;
    #: ``default+multidomain``: the mean of several models' probabilities. Sources may name their own.
    teacher: str = ""
    distill: float = 0.0  # weight of the teacher's soft targets (0: plain labels, 1: teacher only)
    #: weight, within the teacher's gender targets, of a second gender teacher: dlib face-recognition
    #: embeddings + cross-fitted logistic regression (train/facefeat.py; needs the facefeat extra)
    face_teacher: float = 0.0
    #: several training sources at once (each a ``data`` block); empty: ``data`` alone. Every source keeps
    #: its own validation part, and the validation objective is the mean of the per-source objectives.
    sources: list[DataConfig] = field(default_factory=list)
    #: samples per epoch, drawn with replacement by source weight (0: one pass over the training images)
    epoch_size: int = 0
    #: balance of age bands x gender within a source: sample weight ~ count(cell) ** -balance (0: off, 1: full)
    balance: float = 0.0
    #: a record field (``extra``, such as UTKFace's ``race``) whose groups are balanced too, within each
    #: source: sample weight also ~ count(group) ** -group_balance; rows without the field weigh as a group
    #: of the known groups' mean size
    balance_by: str = ""
    group_balance: float = 0.0
    #: start from these weights: a run folder or checkpoint (.pt), or an exported ONNX model, with
    #: ``#K`` for the K-th network of an ensemble (``src/agegender/assets/model.onnx#1``)
    init: str = ""
    #: keep batch norms in evaluation mode (fine-tuning, and required after ``init`` from ONNX)
    freeze_bn: bool = False
    #: probability of each photo-domain augmentation (sepia, casts, low contrast, heavy blur or sharpening,
    #: grain, halftone, heavy JPEG, 24-48 px faces, occluders; train/domain_aug.py); 0: off
    domain_aug: float = 0.0
    #: share of training crops turned into scanned old prints (toning, fading, sharpening, grain at once;
    #: train/domain_aug.py ``old_print``); 0: off
    old_print: float = 0.0
    #: share of training crops saved again as users do (JPEG 60-95, WebP, CMYK, grey, +-20 % rescale;
    #: train/reencode.py), so that re-encoding a photo does not change its answer; 0: off
    reencode: float = 0.0
    #: share of training crops made unreadable (upside down, on a side, blurred away) and taught a 50 %
    #: gender (train/unjudgeable.py), so that such faces come back with low confidence; 0: off
    unjudgeable: float = 0.0
    max_rotate: float = 12.0  # degrees
    seed: int = 0
    threads: int = 2
    out_dir: str = "runs/attn_mbv2-utkface"
    val_part: str = "val"  # which split part validates (cv overrides with a fold)
    cv_fold: int = -1  # >= 0: train on the other folds, validate on this one
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """The inverse of ``to_dict`` (a run's ``config.json``); keys this version does not know are refused."""
        known = {f.name for f in fields(cls)}
        bad = set(d) - known
        if bad:
            raise DatasetError(f"unknown config keys {sorted(bad)}")
        rest = {k: v for k, v in d.items() if k not in ("data", "sources")}
        return cls(**rest, data=DataConfig(**d.get("data", {})),
                   sources=[DataConfig(**x) for x in d.get("sources") or []])

    def all_sources(self) -> list[DataConfig]:
        """The training sources: ``sources``, or ``data`` alone."""
        return self.sources or [self.data]


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


def _data_config(v: Any, p: Path) -> DataConfig:
    if not isinstance(v, dict):
        raise DatasetError(f"{p}: a data block must be a mapping")
    bad = set(v) - {f.name for f in fields(DataConfig)}
    if bad:
        raise DatasetError(f"{p}: unknown data keys {sorted(bad)}")
    return DataConfig(**v)


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
                cfg.data = _data_config(v, p)
            elif k == "sources":
                if not isinstance(v, list) or not v:
                    raise DatasetError(f"{p}: sources must be a non-empty list of data blocks")
                cfg.sources = [_data_config(x, p) for x in v]
            else:
                setattr(cfg, k, type(getattr(cfg, k))(v) if getattr(cfg, k) is not None else v)
    return apply_overrides(cfg, overrides or [])
