"""An exponential moving average of the weights (``optim.ema``): updated after every optimiser step, and what
validation scores, ``best.pt`` keeps and ``agegender export`` ships, instead of the last step's weights
(what it did on the shipped network: ``docs/training.md``)."""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..errors import DatasetError


def check_decay(decay: float) -> None:
    """Refuse an ``optim.ema`` outside (0, 1), before any data is loaded."""
    if not 0.0 < decay < 1.0:
        raise DatasetError(f"optim.ema must be in (0, 1) (0 turns it off), not {decay!r}")


class WeightAverage:
    """``decay`` in (0, 1): each step, average = decay * average + (1 - decay) * weights (buffers too); the
    first step copies the weights."""

    def __init__(self, model: nn.Module, decay: float):
        check_decay(decay)
        self._avg = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)

    @property
    def module(self) -> nn.Module:
        """The averaged network (the same class as the trained one)."""
        return self._avg.module

    def update(self, model: nn.Module) -> None:
        self._avg.update_parameters(model)

    def state_dict(self) -> dict[str, Any]:
        return self._avg.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._avg.load_state_dict(state)
