"""Models whose networks see different framings of the same face (a tight crop and a wide view of the
head): which view each member reads, and the cached crops of every view stacked on the channel axis, row
for row, as the exported graph takes them (``card.alignment.views``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from .config import TrainConfig, canonical
from .dataset import Arrays, DatasetError, load_arrays

Framing = tuple[float, str]


def framing_of(cfg: dict[str, Any]) -> Framing:
    """A saved training config's (margin, border), whatever its form (``config.canonical``)."""
    model = canonical(cfg, "member config")["model"]
    return float(model["margin"]), str(model["border"])


def member_views(cfgs: list[dict[str, Any]]) -> tuple[list[Framing], list[int]]:
    """The distinct framings of an ensemble's members, tightest first (smallest margin; the attention map
    and the overlays show the first), and the view each member reads. Members must share the input size."""
    sizes = {canonical(c, "member config")["model"]["input_size"] for c in cfgs}
    if len(sizes) != 1:
        raise ValueError(f"ensemble members must share the input size, not {sorted(sizes)}")
    framings = sorted({framing_of(c) for c in cfgs})
    return framings, [framings.index(framing_of(c)) for c in cfgs]


def view_config(base: TrainConfig, member: dict[str, Any]) -> TrainConfig:
    """``base`` (its sources, splits and parts) framed as ``member`` was trained: the member's margin and
    border, and each source's crop cache taken from the member's source of the same dataset."""
    margin, border = framing_of(member)
    if (margin, border) == (base.model.margin, base.model.border):
        return base
    theirs = {d["dataset"]: d for d in (member.get("sources") or [member.get("data") or {}]) if d}
    sources = []
    for d in base.all_sources():
        m = theirs.get(d.dataset)
        if m is None or not m.get("cache"):
            raise DatasetError(f"no {margin}/{border} crop cache of {d.dataset} in the member "
                               f"{member.get('name')!r}: it did not train on that source")
        sources.append(replace(d, cache=m["cache"], landmarks=m.get("landmarks") or d.cache))
    cfg = replace(base, model=replace(base.model, margin=margin, border=border))
    if base.sources:
        return replace(cfg, sources=sources)
    return replace(cfg, data=sources[0])


def framed_arrays(base: TrainConfig, member: dict[str, Any], parts: tuple[str, ...],
                  like: dict[str, Arrays] | None = None) -> dict[str, Arrays]:
    """``load_arrays`` of ``base`` framed as ``member`` (:func:`view_config`); with ``like``, checked to be
    the same images in the same order as those arrays."""
    out = load_arrays(view_config(base, member), parts)
    for p in parts if like is not None else ():
        if out[p].paths != like[p].paths:
            margin, border = framing_of(member)
            raise DatasetError(f"the {margin}/{border} crops of part {p} are not the same images as the first "
                               "view's (build that cache with landmarks: from the first one)")
    return out


def stacked_arrays(base: TrainConfig, cfgs: list[dict[str, Any]], parts: tuple[str, ...]) -> dict[str, Arrays]:
    """``load_arrays(base, parts)`` with every view's crops stacked on the channel axis (the views of
    :func:`member_views`); the other views' rows must be the same images in the same order."""
    framings, _ = member_views(cfgs)
    by_framing = {framing_of(c): c for c in cfgs}
    out = framed_arrays(base, by_framing[framings[0]], parts)
    for f in framings[1:]:
        other = framed_arrays(base, by_framing[f], parts, like=out)
        for p in parts:
            out[p] = replace(out[p], crops=torch.cat([out[p].crops, other[p].crops], dim=3))
    return out
