"""The multi-task network: backbone -> attention pooling -> gender head; age head sees gender."""

from __future__ import annotations

import torch
from torch import nn

from .layers import AvgPool, BorderMask, SpatialAttention

NUM_AGES = 101  # whole years 0..100


class MultiTaskNet(nn.Module):
    """Gender and age from one face crop.

    ``forward`` returns ``(gender_logits (N, 2), age_logits (N, 101), attention (N, 1, h, w))``.
    The age head's input is the image embedding concatenated with the predicted gender
    probabilities (``gender_to_age``); the gender probabilities are detached there so that the age
    loss does not pull the gender head. ``border_mask``: hide that fraction of the crop on each side
    (a face-only network, :class:`BorderMask`).
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_features: int,
        attention: bool = True,
        gender_to_age: bool = True,
        embed_dim: int = 256,
        dropout: float = 0.2,
        border_mask: float = 0.0,
    ) -> None:
        super().__init__()
        self.mask = BorderMask(border_mask) if border_mask > 0 else None
        self.backbone = backbone
        self.pool = SpatialAttention(num_features) if attention else AvgPool(num_features)
        self.embed = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(num_features, embed_dim), nn.BatchNorm1d(embed_dim), nn.ReLU(inplace=True)
        )
        self.gender_to_age = gender_to_age
        self.gender_head = nn.Linear(embed_dim, 2)
        self.age_head = nn.Sequential(
            nn.Linear(embed_dim + (2 if gender_to_age else 0), embed_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout / 2),
            nn.Linear(embed_dim, NUM_AGES),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.mask is not None:
            x = self.mask(x)
        return self.backbone.forward_features(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feats = self.forward_features(x)
        pooled, att = self.pool(feats)
        emb = self.embed(pooled)
        g = self.gender_head(emb)
        age_in = torch.cat([emb, torch.softmax(g, 1).detach()], 1) if self.gender_to_age else emb
        return g, self.age_head(age_in), att


class Ensemble(nn.Module):
    """Averages its members' probabilities; exported as one graph (outputs are log-probabilities,
    so softmax at inference gives back the averaged probabilities).

    ``views``: for each member, which view of the input it reads, when the input stacks several framings
    of each face on its channels (3 each; the model card's ``alignment.views``). The attention map is the
    mean of the members that read the first view (its coordinates are that crop's)."""

    def __init__(self, members: list[nn.Module], views: list[int] | None = None) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.views = list(views) if views is not None else [0] * len(members)
        if len(self.views) != len(members) or 0 not in self.views:
            raise ValueError("views must name one view per member, and some member must read the first")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        gs, ages, atts = [], [], []
        multi = any(self.views)
        for m, v in zip(self.members, self.views):
            g, a, att = m(x[:, 3 * v : 3 * v + 3] if multi else x)
            gs.append(torch.softmax(g, 1))
            ages.append(torch.softmax(a, 1))
            if v == 0:
                atts.append(att)
        g = torch.log(torch.stack(gs).mean(0) + 1e-8)
        a = torch.log(torch.stack(ages).mean(0) + 1e-8)
        att = torch.stack(atts).mean(0)
        return g, a, att


class MirrorTTA(nn.Module):
    """Optional mirror test-time augmentation: averages the probabilities of a crop and its mirror image.

    Outputs stay ``(gender_logits, age_logits, attention)`` (log-probabilities when ``flip``); this is the
    graph `agegender export` writes, and what validation with ``flip=True`` scores.
    """

    def __init__(self, model: nn.Module, flip: bool = False) -> None:
        super().__init__()
        self.model = model
        self.flip = flip

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g, a, att = self.model(x)
        if self.flip:
            g2, a2, _ = self.model(torch.flip(x, dims=[3]))
            g = torch.log((torch.softmax(g, 1) + torch.softmax(g2, 1)) / 2 + 1e-8)
            a = torch.log((torch.softmax(a, 1) + torch.softmax(a2, 1)) / 2 + 1e-8)
        return g, a, att
