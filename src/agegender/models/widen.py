"""Function-preserving widening (Net2WiderNet) of a trained MobileNetV2 network into one whose inverted
residual blocks have k times the hidden channels (``MobileNetV2(expand_scale=k)``).

Each hidden channel is copied k times: the expansion convolution, its batch norm, the depthwise
convolution and its batch norm are repeated, and the projection convolution's weights for a channel are
shared equally among its k copies. The wide network then computes what the narrow one did. ``noise`` adds
Gaussian noise (relative to each weight's channel RMS) to the copies' expansion and depthwise weights:
without it the copies receive identical updates under AdamW and never become different features.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbones import InvertedResidual

#: relative noise on the copies when a trained network is widened to be trained further
WIDEN_NOISE = 0.02


def _blocks(model: nn.Module) -> dict[str, InvertedResidual]:
    return {name: m for name, m in model.named_modules() if isinstance(m, InvertedResidual)}


def _repeat(t: torch.Tensor, k: int, dim: int = 0) -> torch.Tensor:
    return torch.cat([t] * k, dim=dim)


def _noisy_copies(w: torch.Tensor, k: int, noise: float, gen: torch.Generator) -> torch.Tensor:
    """``w`` (out channels first) repeated k times along dim 0; the copies after the first get noise."""
    wide = _repeat(w, k)
    if noise > 0 and k > 1:
        h = w.shape[0]
        rms = w.flatten(1).pow(2).mean(1).sqrt().view(-1, *[1] * (w.dim() - 1))
        eps = torch.randn(wide[h:].shape, generator=gen, dtype=w.dtype)
        wide[h:] += noise * _repeat(rms, k - 1) * eps
    return wide


def _widen_block(prefix: str, narrow: dict[str, torch.Tensor], k: int, noise: float,
                 gen: torch.Generator) -> dict[str, torch.Tensor]:
    """The wide block's tensors that differ in shape from the narrow block's."""
    out = {f"{prefix}.conv.{c}.0.weight": _noisy_copies(narrow[f"{prefix}.conv.{c}.0.weight"], k, noise, gen)
           for c in (0, 1)}
    for c in (0, 1):
        for p in ("weight", "bias", "running_mean", "running_var"):
            out[f"{prefix}.conv.{c}.1.{p}"] = _repeat(narrow[f"{prefix}.conv.{c}.1.{p}"], k)
    out[f"{prefix}.conv.2.weight"] = _repeat(narrow[f"{prefix}.conv.2.weight"], k, dim=1) / k
    return out


@torch.no_grad()
def widen_into(narrow: nn.Module, wide: nn.Module, noise: float = 0.0, seed: int = 0) -> nn.Module:
    """Fill ``wide`` from ``narrow`` (the same network but for wider hidden layers). Returns ``wide``."""
    gen = torch.Generator().manual_seed(seed)
    src = narrow.state_dict()
    new: dict[str, torch.Tensor] = {}
    blocks_n, blocks_w = _blocks(narrow), _blocks(wide)
    if blocks_n.keys() != blocks_w.keys():
        raise ValueError("widen_into: the two networks do not have the same blocks")
    for name, block in blocks_n.items():
        hidden_n, hidden_w = block.conv[-2].in_channels, blocks_w[name].conv[-2].in_channels
        if hidden_n == hidden_w:
            continue
        if len(block.conv) != 4 or hidden_w % hidden_n:
            raise ValueError(f"widen_into: block {name} cannot be widened from {hidden_n} to {hidden_w} channels")
        new.update(_widen_block(name, src, hidden_w // hidden_n, noise, gen))
    state = wide.state_dict()
    for key, target in state.items():
        value = new.get(key, src.get(key))
        if value is None or value.shape != target.shape:
            raise ValueError(f"widen_into: no tensor of shape {tuple(target.shape)} for {key}")
        target.copy_(value)
    return wide
