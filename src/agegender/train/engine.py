"""One epoch of training and one pass of evaluation: small functions, no framework."""

from __future__ import annotations

import math
import sys

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..models.multitask import NUM_AGES, MirrorTTA
from .augment import augment, normalize
from .config import TrainConfig
from .dataset import Arrays
from .ema import WeightAverage
from .levers import Batch, Lever
from .losses import distillation_loss, multitask_loss

YEARS = torch.arange(NUM_AGES, dtype=torch.float32)


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / max(1, warmup)
    t = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def draw_order(n: int, cfg: TrainConfig, epoch: int, rank: int = 0, world: int = 1,
               sample_weights: torch.Tensor | None = None) -> torch.Tensor:
    """This rank's rows for one epoch: a permutation of ``n`` rows, or ``sampling.epoch_size`` weighted draws."""
    g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
    if sample_weights is not None:
        perm = torch.multinomial(sample_weights, cfg.sampling.epoch_size or n, replacement=True, generator=g)
    else:
        perm = torch.randperm(n, generator=g)
    per_rank = len(perm) // world
    return perm[rank * per_rank : (rank + 1) * per_rank]


def augmented_batch(data: Arrays, idx: torch.Tensor, cfg: TrainConfig, g: torch.Generator,
                    levers: list[Lever]) -> Batch:
    """Rows ``idx`` as the network sees them (``Batch.x``): each lever's ``crops`` hook, then augmentation
    (with the levers' hooks inside it)."""
    batch = Batch(idx, data.crops[idx], torch.zeros(len(idx), dtype=torch.bool))
    for lever in levers:
        lever.crops(batch, g)
    batch.x = augment(batch.crops, g, max_rotate=cfg.augment.max_rotate, p_degrade=cfg.augment.degrade,
                      levers=levers)
    return batch


def batch_loss(g_logits: torch.Tensor, a_logits: torch.Tensor, data: Arrays, batch: Batch, cfg: TrainConfig,
               levers: list[Lever]) -> tuple[torch.Tensor, dict[str, float]]:
    """Labels (and a teacher's targets, where the row's source has one) for the rows a lever does not teach
    otherwise (``Batch.unlabelled``); then each lever's own term."""
    seen = ~batch.unlabelled
    rows = batch.idx[seen]
    c = cfg.loss
    loss, parts = multitask_loss(
        g_logits[seen], a_logits[seen], data.gender[rows], data.age[rows], data.age_low[rows],
        data.age_high[rows], sigma=c.label_sigma, l1_weight=c.age_l1_weight,
        gender_weight=c.gender_weight, label_smoothing=c.label_smoothing,
    )
    if cfg.distill.weight > 0 and data.soft_gender is not None and data.soft_age is not None:
        taught = torch.isfinite(data.soft_gender[rows, 0])  # rows of sources with a teacher
        if taught.any():
            kd, kd_parts = distillation_loss(g_logits[seen][taught], a_logits[seen][taught],
                                             data.soft_gender[rows][taught], data.soft_age[rows][taught])
            share = cfg.distill.weight * float(taught.float().mean())
            loss = (1 - share) * loss + share * kd
            parts.update(kd_parts)
    for lever in levers:
        extra = lever.loss(batch, g_logits, a_logits)
        if extra is not None:
            loss = loss + extra[0]
            parts.update(extra[1])
    return loss, parts


def train_one_epoch(
    model: nn.Module,
    data: Arrays,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    cfg: TrainConfig,
    epoch: int,
    rank: int = 0,
    world: int = 1,
    sample_weights: torch.Tensor | None = None,
    levers: list[Lever] | None = None,
    ema: WeightAverage | None = None,
) -> dict[str, float]:
    """One epoch over ``draw_order``'s rows; ``levers``: ``levers.build_levers(cfg, data)``; ``ema``: a
    moving average of the weights, updated after each step."""
    levers = levers if levers is not None else []
    model.train()
    if cfg.model.freeze_bn:
        from .onnx_weights import freeze_batchnorm

        freeze_batchnorm(model)
    perm = draw_order(len(data), cfg, epoch, rank, world, sample_weights)
    bs = cfg.optim.batch_size
    n_batches = max(1, len(perm) // bs)
    sums: dict[str, float] = {}
    aug_g = torch.Generator().manual_seed(cfg.seed * 7919 + epoch * 31 + rank)
    bar = tqdm(range(n_batches), desc=f"epoch {epoch}", disable=rank != 0 or not sys.stderr.isatty(), mininterval=1)
    for b in bar:
        batch = augmented_batch(data, perm[b * bs : (b + 1) * bs], cfg, aug_g, levers)
        g_logits, a_logits, _ = model(batch.x)
        loss, parts = batch_loss(g_logits, a_logits, data, batch, cfg, levers)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update(model)
        parts["loss"] = float(loss.detach())
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
        if b % 20 == 0:
            bar.set_postfix(loss=f"{parts['loss']:.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
    return {f"train_{k}": v / n_batches for k, v in sums.items()}


@torch.no_grad()
def predict_logits(model: nn.Module, crops: torch.Tensor, batch_size: int = 256, flip: bool = False
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Gender and age logits for uint8 NHWC crops, as the exported graph computes them
    (``flip``: averaged with the mirrored crop)."""
    wrapped = MirrorTTA(model, flip=flip).eval()
    gs, ages = [], []
    for i in range(0, len(crops), batch_size):
        x = normalize(crops[i : i + batch_size]).contiguous(memory_format=torch.channels_last)
        g, a, _ = wrapped(x)
        gs.append(g)
        ages.append(a)
    return torch.cat(gs).numpy(), torch.cat(ages).numpy()


def score(gender_logits: np.ndarray, age_logits: np.ndarray, data: Arrays) -> dict[str, float]:
    """Age MAE (exact ages), group-range hit rate (ranges), gender accuracy (known genders)."""
    pa = np.exp(age_logits - age_logits.max(1, keepdims=True))
    pa /= pa.sum(1, keepdims=True)
    expected = pa @ YEARS.numpy()
    age = data.age.numpy()
    gender = data.gender.numpy()
    out: dict[str, float] = {}
    exact = age >= 0
    if exact.any():
        out["mae"] = float(np.abs(expected[exact] - age[exact]).mean())
    known = gender >= 0
    if known.any():
        out["gender_acc"] = float((gender_logits.argmax(1)[known] == gender[known]).mean())
    ranged = ~exact
    if ranged.any():
        lo, hi = data.age_low.numpy()[ranged], data.age_high.numpy()[ranged]
        years = np.arange(NUM_AGES)
        inside = (years[None] >= lo[:, None]) & (years[None] <= hi[:, None])
        # the predicted group is the range with the most mass among those seen in the data
        out["range_mass"] = float((pa[ranged] * inside).sum(1).mean())
    return out


def _group_counts(values: np.ndarray) -> np.ndarray:
    """For each row, how many rows share its value."""
    _, inv, counts = np.unique(values, return_inverse=True, return_counts=True)
    return counts[inv].astype(np.float64)


def sample_weights(data: Arrays, shares: list[float], balance: float, balance_by: str = "",
                   group_balance: float = 0.0) -> torch.Tensor:
    """Per-row sampling weights: each source gets its share of the draws; within a source, rows of an
    (age band x gender) cell weigh ``count(cell) ** -balance`` (0: as found, 1: every cell equally), and,
    with ``balance_by`` (a field of the records' ``extra``, such as ``race``), also
    ``count(group) ** -group_balance`` (1: every group the same share of the source's draws; rows without
    the field weigh as a group of the mean size, so a few of them do not take a whole group's share)."""
    from ..data.splits import AGE_BANDS

    src = data.source.numpy() if data.source is not None else np.zeros(len(data), np.int64)
    age = np.where(data.age.numpy() >= 0, data.age.numpy(), (data.age_low.numpy() + data.age_high.numpy()) / 2)
    cell = np.searchsorted(AGE_BANDS, age, side="right") * 3 + (data.gender.numpy() + 1)
    w = np.zeros(len(data), np.float64)
    total = sum(shares)
    for k, share in enumerate(shares):
        rows = np.flatnonzero(src == k)
        if not len(rows):
            continue
        wk = _group_counts(cell[rows]) ** -balance
        if balance_by and group_balance > 0:
            groups = np.array([str(data.records[i].extra.get(balance_by, "")) for i in rows])
            counts = _group_counts(groups)
            known = groups != ""
            if known.any():  # rows without the field count as a group of the known groups' mean size
                counts[~known] = known.sum() / len(np.unique(groups[known]))
            wk *= counts ** -group_balance
        w[rows] = share / total * wk / wk.sum()
    return torch.from_numpy(w)


def score_sources(gender_logits: np.ndarray, age_logits: np.ndarray, data: Arrays) -> dict[str, float]:
    """Validation metrics over all rows, per source (``SOURCE_mae``...) and the objective: the mean of
    the per-source objectives, so that no recipe wins by fitting one source."""
    out = score(gender_logits, age_logits, data)
    parts = data.by_source()
    if len(parts) == 1:
        return {**out, "objective": objective(out)}
    objs = []
    src = data.source.numpy()
    for k, name in enumerate(data.source_names):
        rows = np.flatnonzero(src == k)
        m = score(gender_logits[rows], age_logits[rows], parts[name])
        out.update({f"{name}_{key}": v for key, v in m.items()})
        out[f"{name}_objective"] = objective(m)
        objs.append(out[f"{name}_objective"])
    out["objective"] = float(np.mean(objs))
    return out


def objective(metrics: dict[str, float]) -> float:
    """Validation score to minimise: MAE plus 20 years per unit of gender error (1 % = 0.2 years)."""
    return metrics.get("mae", 0.0) + 20.0 * (1.0 - metrics.get("gender_acc", 1.0)) + 10.0 * (
        1.0 - metrics.get("range_mass", 1.0)) * ("range_mass" in metrics)
