"""Training configuration: a YAML file plus ``--set key=value`` overrides, as typed nested dataclasses.

A config holds a few run-level keys (``name``, ``out_dir``, ``seed``, ``threads``, ``val_part``, ``cv_fold``),
the training data (``data``, or ``sources``: several ``data`` blocks) and one block per concern::

    model: {arch: attn_mbv2, pretrained: true, input_size: 112, margin: 0.0, border: edge, dropout: 0.2}
    optim: {epochs: 18, batch_size: 64, lr: 6.0e-4, weight_decay: 0.05, warmup_epochs: 1.0, patience: 6,
            ema: 0.0}
    loss: {label_sigma: 2.0, age_l1_weight: 0.1, gender_weight: 1.0, label_smoothing: 0.05}
    augment: {max_rotate: 12.0, degrade: 0.0}
    sampling: {epoch_size: 0, balance: 0.0, balance_by: "", group_balance: 0.0}
    distill: {teacher: "", weight: 0.0, face_teacher: 0.0}
    levers: {reencode: {p: 0.3}, unjudgeable: {p: 0.03}}   # one block per research lever (train/levers/)

Overrides name dotted keys: ``--set optim.lr=3e-4``. Configs in the old flat form (``lr: 3e-4``) still load:
``legacy_config.MOVED`` says where each old key went, and a warning names the new keys.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field, fields, is_dataclass, make_dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import DatasetError
from .legacy_config import MOVED, migrate, warn_once
from .levers import lever_classes

#: keys a run's saved config carries about where its weights came from (an exported model's network,
#: an interpolation), recorded in cards but not training settings
PROVENANCE_KEYS = ("taken_from", "interpolated")


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
    #: this source's distillation teacher (as ``distill.teacher``); empty: the run's teacher; "none": labels only
    teacher: str = ""


@dataclass
class ModelConfig:
    arch: str = "attn_mbv2"  #: the network, by its name in ``models.create_model``'s registry
    pretrained: bool = True  #: ImageNet weights for the backbone (not with ``init``)
    input_size: int = 112
    margin: float = 0.0
    #: crop fill past the photo: "edge" (repeat its pixels) or "grey" (align.BORDERS); goes into the card
    border: str = "edge"
    dropout: float = 0.2
    #: start from these weights: a run folder or checkpoint (.pt), or an exported ONNX model, with
    #: ``#K`` for the K-th network of an ensemble (``src/agegender/assets/model.onnx#1``)
    init: str = ""
    #: the architecture of ``init``'s weights when it is not ``arch``: they are loaded into it, then widened
    #: into ``arch`` without changing what the network computes (``models.widen``: attn_mbv2 -> attn_mbv2_x2)
    init_arch: str = ""
    #: keep batch norms in evaluation mode (fine-tuning, and required after ``init`` from ONNX)
    freeze_bn: bool = False
    #: after ``init`` from ONNX: re-estimate the batch norms' statistics from this many training crops
    #: (the function is unchanged), so they can train (``freeze_bn: false``); 0: off
    recalibrate_bn: int = 0


@dataclass
class OptimConfig:
    """AdamW with warm-up and a cosine decay; early stopping after ``patience`` epochs without a better
    validation objective."""

    epochs: int = 18
    batch_size: int = 64
    lr: float = 6e-4
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    patience: int = 6
    #: decay of a moving average of the weights, updated every step, that is validated, kept and exported
    #: instead of the last step's weights (``train/ema.py``); 0: off
    ema: float = 0.0


@dataclass
class LossConfig:
    label_sigma: float = 2.0  #: years: the width of an exact age's Gaussian label distribution
    age_l1_weight: float = 0.1
    gender_weight: float = 1.0
    label_smoothing: float = 0.05


@dataclass
class AugmentConfig:
    """The plain augmentation every crop gets (flip, rotation, scale, shift, colour, blur, erasing)."""

    max_rotate: float = 12.0  # degrees
    degrade: float = 0.0  # probability of each camera/encoder degradation (0: off)


@dataclass
class SamplingConfig:
    #: samples per epoch, drawn with replacement by source weight (0: one pass over the training images)
    epoch_size: int = 0
    #: balance of age bands x gender within a source: sample weight ~ count(cell) ** -balance (0: off, 1: full)
    balance: float = 0.0
    #: a record field (``extra``, such as UTKFace's ``race``) whose groups are balanced too, within each
    #: source: sample weight also ~ count(group) ** -group_balance; rows without the field weigh as a group
    #: of the known groups' mean size
    balance_by: str = ""
    group_balance: float = 0.0


@dataclass
class DistillConfig:
    #: a teacher model (built-in name such as "default", a card or an ONNX file with its card); its
    #: probabilities on the un-augmented training crops become soft targets; ``default+multidomain``: the
    #: mean of several models' probabilities. Sources may name their own (``DataConfig.teacher``).
    teacher: str = ""
    weight: float = 0.0  #: weight of the teacher's soft targets (0: plain labels, 1: teacher only)
    #: weight, within the teacher's gender targets, of a second gender teacher: dlib face-recognition
    #: embeddings + cross-fitted logistic regression (train/facefeat.py; needs the facefeat extra)
    face_teacher: float = 0.0


def _levers_block() -> type:
    """The ``levers`` block: one field per registered lever, holding its config dataclass."""
    cls = make_dataclass("LeversConfig", [(c.name, c.config_class, field(default_factory=c.config_class))
                                          for c in lever_classes()])
    cls.__module__ = __name__
    return cls


LeversConfig = _levers_block()


@dataclass
class TrainConfig:
    name: str = "attn_mbv2-utkface"
    out_dir: str = "runs/attn_mbv2-utkface"
    seed: int = 0
    threads: int = 2
    val_part: str = "val"  # which split part validates (cv overrides with a fold)
    cv_fold: int = -1  # >= 0: train on the other folds, validate on this one
    data: DataConfig = field(default_factory=DataConfig)
    #: several training sources at once (each a ``data`` block); empty: ``data`` alone. Every source keeps
    #: its own validation part, and the validation objective is the mean of the per-source objectives.
    sources: list[DataConfig] = field(default_factory=list)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    levers: Any = field(default_factory=LeversConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> TrainConfig:
        """The inverse of ``to_dict`` (a run's ``config.json``, a YAML recipe), in the nested or the old flat
        form; keys this version does not know are refused."""
        if not isinstance(d, dict):
            raise DatasetError(f"{where}: a config must be a mapping")
        return _build(cls, migrate(d, where), where)

    def all_sources(self) -> list[DataConfig]:
        """The training sources: ``sources``, or ``data`` alone."""
        return self.sources or [self.data]

    def __getattr__(self, name: str) -> Any:
        """An old flat name reads its new place (``cfg.margin`` is ``cfg.model.margin``), with a warning."""
        if name not in MOVED or name in TrainConfig.__dataclass_fields__:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        warn_once(f"TrainConfig.{name} is the old flat name of {MOVED[name]}")
        return get_key(self, MOVED[name])

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in TrainConfig.__dataclass_fields__:
            now = f" (now {MOVED[name]})" if name in MOVED else ""
            raise AttributeError(f"TrainConfig has no key {name!r}{now}")
        super().__setattr__(name, value)


def get_key(cfg: Any, dotted: str) -> Any:
    """The value at a dotted key (``optim.lr``) of a config or block."""
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def leaf_keys(obj: Any = None, prefix: str = "") -> list[str]:
    """Every settable dotted key of a config or block (the keys of ``data``, not those of ``sources``)."""
    obj = TrainConfig() if obj is None else obj
    out: list[str] = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            out += leaf_keys(value, f"{prefix}{f.name}.")
        elif not isinstance(value, list):
            out.append(prefix + f.name)
    return out


def _unknown(key: str, where: str) -> DatasetError:
    close = difflib.get_close_matches(key, leaf_keys() + list(MOVED), n=1)
    return DatasetError(f"{where}: unknown config key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))


def _typed(value: Any, current: Any, key: str, where: str) -> Any:
    """A YAML or JSON value as the type of the key's default (as the loader always did)."""
    try:
        return type(current)(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: {key} must be of type {type(current).__name__}, got {value!r}") from None


def _data_config(v: Any, where: str) -> DataConfig:
    if not isinstance(v, dict):
        raise DatasetError(f"{where}: a data block must be a mapping")
    bad = set(v) - {f.name for f in fields(DataConfig)}
    if bad:
        raise DatasetError(f"{where}: unknown data keys {sorted(bad)}")
    return DataConfig(**v)


def _build(cls: type, d: Any, where: str, prefix: str = "") -> Any:
    """A config (or block) from its mapping: every key known, every value of its key's type."""
    if not isinstance(d, dict):
        raise DatasetError(f"{where}: {prefix.rstrip('.')} must be a mapping of its keys, got {d!r}")
    obj = cls()
    names = {f.name for f in fields(cls)}
    for k, v in d.items():
        key = prefix + k
        if k not in names:
            raise _unknown(key, where)
        current = getattr(obj, k)
        if isinstance(current, DataConfig):
            value = _data_config(v, where)
        elif key == "sources":
            if v is not None and not isinstance(v, list):
                raise DatasetError(f"{where}: sources must be a list of data blocks")
            value = [_data_config(x, where) for x in v or []]
        elif is_dataclass(current):
            value = _build(type(current), v, where, key + ".")
        else:
            value = _typed(v, current, key, where)
        setattr(obj, k, value)
    return obj


def _coerce(value: str, current: Any) -> Any:
    if isinstance(current, bool):
        return value.lower() in ("1", "true", "yes", "on")
    if isinstance(current, int):
        return int(value)
    if isinstance(current, float):
        return float(value)
    return value


def _override_path(cfg: TrainConfig, key: str) -> str:
    """The dotted key an override sets: the key itself, or an old flat key's new place (with a warning)."""
    if key in leaf_keys(cfg):
        return key
    if key in MOVED:  # model and distill are blocks now: as single keys they are old ones too
        warn_once(f"--set {key}: old flat config key, read as {MOVED[key]}")
        return MOVED[key]
    inside = [k for k in leaf_keys(cfg) if k.startswith(key + ".")]
    if inside:
        raise DatasetError(f"--set {key}: a block, not a key; set one of its keys ({', '.join(inside)})")
    raise _unknown(key, "--set")


def apply_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """``key=value`` items (dotted keys: ``optim.lr=3e-4``; old flat keys are moved) set on ``cfg``."""
    for item in overrides:
        if "=" not in item:
            raise DatasetError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        *blocks, leaf = _override_path(cfg, key).split(".")
        target = get_key(cfg, ".".join(blocks)) if blocks else cfg
        current = getattr(target, leaf)
        try:
            setattr(target, leaf, _coerce(value, current))
        except ValueError:
            raise DatasetError(f"--set {key}: {value!r} is not of type {type(current).__name__}") from None
    return cfg


def saved_config(d: dict[str, Any], where: str = "saved config") -> tuple[TrainConfig, dict[str, Any]]:
    """A run's saved config (its ``config.json``, a checkpoint's, one a card records; nested or old flat form):
    the config, and the provenance keys it carries (``PROVENANCE_KEYS``)."""
    provenance = {k: d[k] for k in PROVENANCE_KEYS if k in d}
    return TrainConfig.from_dict({k: v for k, v in d.items() if k not in PROVENANCE_KEYS}, where), provenance


def canonical(d: dict[str, Any], where: str = "saved config") -> dict[str, Any]:
    """A saved config in the nested form, complete, its provenance kept."""
    cfg, provenance = saved_config(d, where)
    return {**cfg.to_dict(), **provenance}


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    cfg = TrainConfig()
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise DatasetError(f"config not found: {p}")
        raw = yaml.safe_load(p.read_text()) or {}
        if not isinstance(raw, dict):
            raise DatasetError(f"{p}: a config must be a mapping")
        cfg = TrainConfig.from_dict(raw, where=str(p))
    return apply_overrides(cfg, overrides or [])
