"""Lever ``unjudgeable``: a face the network cannot read should get a low-confidence gender.

A share of each batch is made unreadable (turned upside down or on its side, or blurred far past any
photo's focus) and taught a uniform gender distribution instead of its label; its age is left out of the
loss. Without this the network answers such faces as confidently as clear ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..augment import lose_detail
from .base import Batch, Lever, LeverConfig, register


def make_unjudgeable(x: torch.Tensor, p: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 NHWC crops, a share ``p`` of them made unreadable; returns the crops and the (N,) bool mask."""
    mask = torch.rand(x.shape[0], generator=g) < p
    if not mask.any():
        return x, mask
    x = x.clone()
    for i in mask.nonzero().flatten().tolist():
        kind = int(torch.randint(0, 3, (1,), generator=g))
        if kind == 0:
            x[i] = x[i].flip(0)  # upside down (and mirrored by the flip augmentation half the time)
        elif kind == 1:
            x[i] = x[i].transpose(0, 1).flip(int(torch.randint(0, 2, (1,), generator=g)))  # on its side
        else:
            img = x[i].permute(2, 0, 1)[None].float()
            size = int(torch.randint(3, 7, (1,), generator=g))  # a 3-6 px face blown back up
            x[i] = lose_detail(img, size)[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8)
    return x, mask


def uniform_gender_loss(gender_logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy to the uniform distribution over the gender classes (minimal at 50 %)."""
    return -F.log_softmax(gender_logits, 1).mean()


@dataclass
class UnjudgeableConfig(LeverConfig):
    """``p``: the share of training crops made unreadable (upside down, on a side, blurred away) and taught a
    50 % gender, so that such faces come back with low confidence."""


@register
class Unjudgeable(Lever):
    name = "unjudgeable"
    order = 40
    config_class = UnjudgeableConfig

    def crops(self, batch: Batch, g: torch.Generator) -> None:
        # draws its coin flips even at p 0, as it always has: the batches after it stay as they were
        batch.crops, blind = make_unjudgeable(batch.crops, self.config.p, g)
        batch.unlabelled = batch.unlabelled | blind
        batch.marks[self.name] = blind

    def loss(self, batch: Batch, gender_logits: torch.Tensor, age_logits: torch.Tensor
             ) -> tuple[torch.Tensor, dict[str, float]] | None:
        blind = batch.marks[self.name]
        if not blind.any():
            return None
        lu = uniform_gender_loss(gender_logits[blind])
        return float(blind.float().mean()) * lu, {"unjudgeable": float(lu.detach())}
