"""Lever ``consistency``: a crop and its re-saved copy are taught the same answer.

A share of each batch's labelled crops is copied, and each copy saved again as users do (greyscale with
probability ``grey``, else JPEG, WebP, CMYK or a rescale, as ``reencode`` does). The copies join the batch
(with the same labels) and go through augmentation on their own draws, so a pair also differs by mirror
image, rotation, scale and colour. A term pulls each pair's answers together: the symmetric KL divergence
of their gender distributions (``weight``) and of their age distributions (``age_weight``). Unlike showing
re-saved crops alone (``reencode``), this teaches the network that both copies are one face.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import Batch, Lever, LeverConfig, register
from .reencode import KINDS, resave

#: the kinds a copy is saved as when it is not turned grey
COLOUR_KINDS = tuple(k for k in KINDS if k != "grey")


def resaved_copies(crops: torch.Tensor, grey: float, g: torch.Generator) -> torch.Tensor:
    """A re-saved copy of each uint8 NHWC crop: greyscale with probability ``grey``, else one of
    ``COLOUR_KINDS`` at random (JPEG/WebP/CMYK quality 60-95, rescale by 0.8-1.2)."""
    n = crops.shape[0]
    is_grey = (torch.rand(n, generator=g) < grey).tolist()
    kinds = torch.randint(0, len(COLOUR_KINDS), (n,), generator=g).tolist()
    qualities = torch.randint(60, 96, (n,), generator=g).tolist()
    scales = (torch.rand(n, generator=g) * 0.4 + 0.8).tolist()
    out = torch.empty_like(crops)
    for i in range(n):
        out[i] = resave(crops[i], "grey" if is_grey[i] else COLOUR_KINDS[kinds[i]], qualities[i], scales[i])
    return out


def symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """Mean over rows of KL(a||b) + KL(b||a) between the softmax distributions of two logit batches."""
    la, lb = F.log_softmax(logits_a, 1), F.log_softmax(logits_b, 1)
    return ((la.exp() - lb.exp()) * (la - lb)).sum(1).mean()


@dataclass
class ConsistencyConfig(LeverConfig):
    """``p``: the share of a batch's labelled crops that get a re-saved copy in the batch; ``grey``: the
    share of copies turned greyscale (the rest JPEG, WebP, CMYK or rescaled); ``weight`` and
    ``age_weight``: the pull between a pair's gender and age distributions (symmetric KL)."""

    grey: float = 0.5
    weight: float = 1.0
    age_weight: float = 0.5


@register
class Consistency(Lever):
    name = "consistency"
    order = 45
    config_class = ConsistencyConfig

    def crops(self, batch: Batch, g: torch.Generator) -> None:
        if not self.on:
            return
        candidates = (~batch.unlabelled).nonzero().flatten()
        picked = candidates[torch.rand(len(candidates), generator=g) < self.config.p]
        n, k = len(batch.idx), len(picked)
        batch.crops = torch.cat([batch.crops, resaved_copies(batch.crops[picked], self.config.grey, g)])
        batch.idx = torch.cat([batch.idx, batch.idx[picked]])
        batch.unlabelled = torch.cat([batch.unlabelled, torch.zeros(k, dtype=torch.bool)])
        for name, mask in batch.marks.items():  # earlier levers' row masks cover the copies too
            batch.marks[name] = torch.cat([mask, torch.zeros(k, dtype=mask.dtype)])
        batch.marks[self.name] = torch.stack([picked, torch.arange(n, n + k)])  # (2, k): original, copy

    def loss(self, batch: Batch, gender_logits: torch.Tensor, age_logits: torch.Tensor
             ) -> tuple[torch.Tensor, dict[str, float]] | None:
        pairs = batch.marks.get(self.name)
        if pairs is None or pairs.shape[1] == 0:
            return None
        a, b = pairs
        lg = symmetric_kl(gender_logits[a], gender_logits[b])
        la = symmetric_kl(age_logits[a], age_logits[b])
        term = self.config.weight * lg + self.config.age_weight * la
        return term, {"consistency_gender": float(lg.detach()), "consistency_age": float(la.detach())}
