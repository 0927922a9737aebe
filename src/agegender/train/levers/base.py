"""The lever interface and its registry.

A research lever is an optional change to what training shows the network (a share of the crops
re-encoded, hair hidden, turned unreadable...). Each lives in its own module with a small config dataclass
(its block under ``levers:`` in a training config) and a :class:`Lever` subclass registered by name. The
loop knows none of them: it calls every registered lever's hooks at fixed points of each batch, in the
levers' ``order``. Every hook runs for every lever, the ones set to 0 included; each does nothing at 0 and
draws nothing from the batch's random generator, except ``unjudgeable``, which has always drawn its coin
flips (so the random stream, and with it every batch, is what it was before levers were a package).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import torch

if TYPE_CHECKING:
    from ..config import TrainConfig
    from ..dataset import Arrays


@dataclass
class LeverConfig:
    #: the share of training crops the lever acts on (0: off)
    p: float = 0.0


@dataclass
class Batch:
    """One training batch as the levers see it."""

    idx: torch.Tensor  #: its rows of the training arrays
    crops: torch.Tensor  #: uint8 (N, H, W, 3): what augmentation starts from
    #: (N,) bool: rows a lever teaches something else than their labels (left out of the label and teacher
    #: losses; the lever's ``loss`` hook says what they learn instead)
    unlabelled: torch.Tensor
    #: row masks a lever keeps for its own ``loss`` hook, by lever name
    marks: dict[str, torch.Tensor] = field(default_factory=dict)
    x: torch.Tensor | None = None  #: the network's input, standardised NCHW, once augmented


class Lever:
    """Base class: every hook does nothing. ``name`` is the lever's key under ``levers:``."""

    name: ClassVar[str] = ""
    #: where the lever acts in a batch relative to the others (lower first); two levers may not share it
    order: ClassVar[int] = 0
    config_class: ClassVar[type[LeverConfig]] = LeverConfig
    #: the training arrays must carry each crop's photo window (``Arrays.window``) when the lever is on
    needs_windows: ClassVar[bool] = False

    def __init__(self, config: LeverConfig) -> None:
        self.config = config

    @property
    def on(self) -> bool:
        return self.config.p > 0

    def check(self, cfg: TrainConfig) -> None:
        """Refuse (``DatasetError``) a run config the lever cannot work with, before any data is read."""

    def prepare(self, cfg: TrainConfig, train: Arrays) -> None:
        """Once per run, with the training arrays, before the first batch."""

    def crops(self, batch: Batch, g: torch.Generator) -> None:
        """Change ``batch.crops`` (uint8 NHWC), and ``batch.unlabelled``, before augmentation."""

    def encode(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """uint8 NHWC crops inside augmentation, after its camera JPEG (``augment.degrade``)."""
        return x

    def framing(self, scale: tuple[float, float], shift: float) -> tuple[tuple[float, float], float]:
        """The random scale range and shift (share of the crop) of augmentation's geometry."""
        return scale, shift

    def image(self, img: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Float NCHW images in [0, 1] after augmentation's geometry and colours, before standardisation."""
        return img

    def loss(self, batch: Batch, gender_logits: torch.Tensor, age_logits: torch.Tensor
             ) -> tuple[torch.Tensor, dict[str, float]] | None:
        """A term added to the batch's loss, and its parts for the metrics (None: nothing)."""
        return None


REGISTRY: dict[str, type[Lever]] = {}


def register(cls: type[Lever]) -> type[Lever]:
    """Class decorator: add a lever to the registry; a second lever of the same name or order is refused."""
    if not cls.name:
        raise ValueError(f"{cls.__name__}: a lever needs a name")
    if cls.name in REGISTRY:
        raise ValueError(f"lever {cls.name!r} is registered twice ({REGISTRY[cls.name].__name__}, {cls.__name__})")
    clash = [c.name for c in REGISTRY.values() if c.order == cls.order]
    if clash:
        raise ValueError(f"lever {cls.name!r}: order {cls.order} is taken by {clash[0]!r}")
    REGISTRY[cls.name] = cls
    return cls


def lever_classes() -> list[type[Lever]]:
    """The registered levers in the order they act."""
    return sorted(REGISTRY.values(), key=lambda c: c.order)


def build_levers(cfg: TrainConfig, train: Arrays | None = None) -> list[Lever]:
    """Every registered lever with its block of ``cfg.levers``, checked against ``cfg``; prepared with the
    training arrays when they are given."""
    levers = [c(getattr(cfg.levers, c.name)) for c in lever_classes()]
    for lever in levers:
        lever.check(cfg)
        if train is not None:
            lever.prepare(cfg, train)
    return levers


def needs_windows(cfg: TrainConfig) -> bool:
    """Whether a lever that is on needs the crops' photo windows."""
    return any(c.needs_windows and getattr(cfg.levers, c.name).p > 0 for c in lever_classes())
