"""Losses: Gaussian label distributions for exact ages, group likelihood for age ranges."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.multitask import NUM_AGES


def gaussian_targets(age: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N,) ages -> (N, 101) normalised Gaussian distributions over whole years."""
    years = torch.arange(NUM_AGES, dtype=torch.float32, device=age.device)
    d = torch.exp(-0.5 * ((years[None] - age[:, None]) / sigma) ** 2)
    return d / d.sum(1, keepdim=True)


def multitask_loss(
    gender_logits: torch.Tensor,
    age_logits: torch.Tensor,
    gender: torch.Tensor,
    age: torch.Tensor,
    age_low: torch.Tensor,
    age_high: torch.Tensor,
    sigma: float = 2.0,
    l1_weight: float = 0.1,
    gender_weight: float = 1.0,
    label_smoothing: float = 0.05,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its parts.

    * gender: cross-entropy, rows with unknown gender (-1) masked out;
    * exact ages (``age >= 0``): KL to a Gaussian label distribution + ``l1_weight`` * |E[age] - age|;
    * age ranges (``age < 0``, bounds in ``age_low``/``age_high``): -log of the probability mass that
      the predicted distribution puts inside the range (Adience's groups).
    """
    parts: dict[str, float] = {}
    total = gender_logits.new_zeros(())
    gmask = gender >= 0
    if gmask.any():
        lg = F.cross_entropy(gender_logits[gmask], gender[gmask], label_smoothing=label_smoothing)
        total = total + gender_weight * lg
        parts["gender"] = float(lg.detach())
    logp = F.log_softmax(age_logits, 1)
    exact = age >= 0
    if exact.any():
        target = gaussian_targets(age[exact], sigma)
        kl = F.kl_div(logp[exact], target, reduction="batchmean")
        years = torch.arange(NUM_AGES, dtype=torch.float32, device=age.device)
        expected = (logp[exact].exp() * years).sum(1)
        l1 = (expected - age[exact]).abs().mean()
        total = total + kl + l1_weight * l1
        parts["age_kl"] = float(kl.detach())
        parts["age_l1"] = float(l1.detach())
    ranged = ~exact
    if ranged.any():
        years = torch.arange(NUM_AGES, dtype=torch.float32, device=age.device)
        inside = (years[None] >= age_low[ranged, None]) & (years[None] <= age_high[ranged, None])
        mass = torch.logsumexp(logp[ranged].masked_fill(~inside, float("-inf")), 1)
        lr = -mass.mean()
        total = total + lr
        parts["age_group_nll"] = float(lr.detach())
    return total, parts


def distillation_loss(
    gender_logits: torch.Tensor, age_logits: torch.Tensor, soft_gender: torch.Tensor, soft_age: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, float]]:
    """KL from a teacher's gender and age probabilities to the student's (knowledge distillation)."""
    kg = F.kl_div(F.log_softmax(gender_logits, 1), soft_gender, reduction="batchmean")
    ka = F.kl_div(F.log_softmax(age_logits, 1), soft_age, reduction="batchmean")
    return kg + ka, {"kd_gender": float(kg.detach()), "kd_age": float(ka.detach())}
