"""``fit(cfg)``: the whole training run with checkpoints, resume, early stopping, logs and curves.

Runs alone or under ``torchrun --nproc_per_node=N`` (DDP with the gloo backend on CPU).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from ..errors import DatasetError
from ..models import create_model, list_models
from ..models.multitask import NUM_AGES
from .config import ModelConfig, TrainConfig
from .dataset import load_arrays
from .ema import WeightAverage, check_decay
from .engine import predict_logits, sample_weights, score_sources, train_one_epoch, warmup_cosine
from .levers import Lever, build_levers

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def plot_curves(csv_path: Path, png_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path) as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return
    ep = [int(r["epoch"]) for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    axes[0].plot(ep, [float(r["train_loss"]) for r in rows], label="train loss")
    axes[0].set_title("training loss")
    if "val_mae" in rows[0]:
        axes[1].plot(ep, [float(r["val_mae"]) for r in rows], "o-")
        axes[1].set_title("validation age MAE (years)")
    if "val_gender_acc" in rows[0]:
        axes[2].plot(ep, [100 * float(r["val_gender_acc"]) for r in rows], "o-")
        axes[2].set_title("validation gender accuracy (%)")
    for a in axes:
        a.set_xlabel("epoch")
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)


def teacher_probabilities(teacher: str, crops: np.ndarray, threads: int = 0, batch: int = 64
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """A teacher model's gender and age probabilities (its card's temperatures applied) for uint8 NHWC
    crops, through ONNX Runtime exactly as at inference; ``a+b``: the mean of several models' probabilities."""
    from ..preprocess import to_input
    from ..runtime import ModelRuntime

    specs = teacher_specs(teacher)
    if len(specs) > 1:
        probs = [teacher_probabilities(t, crops, threads, batch) for t in specs]
        return torch.stack([p[0] for p in probs]).mean(0), torch.stack([p[1] for p in probs]).mean(0)
    rt = ModelRuntime(teacher, threads=threads)
    if rt.card.input.size != crops.shape[1]:
        raise ValueError(f"teacher input {rt.card.input.size} px != crops {crops.shape[1]} px")
    t = rt.card.gender_temperature
    gs, ages = [], []
    for i in tqdm(range(0, len(crops), batch), desc="teacher", disable=not sys.stderr.isatty()):
        raw = rt.run(to_input(crops[i : i + batch], rt.card.input))
        gs.append(torch.softmax(torch.from_numpy(raw.gender_logits) / t, 1))
        ages.append(torch.softmax(torch.from_numpy(raw.age_logits) / rt.card.age_temperature, 1))
    log.info("teacher %s: soft targets for %d crops", teacher, len(crops))
    return torch.cat(gs), torch.cat(ages)


def teacher_specs(teacher: str) -> list[str]:
    """The models of a teacher spec: ``default+multidomain`` -> ``["default", "multidomain"]``."""
    return [t.strip() for t in teacher.split("+") if t.strip()]


def _cached_teacher(teacher: str, train, path: Path, threads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's soft targets for some training crops, kept in the run folder so a resumed run
    does not recompute them (recomputed when the teacher's weights or the training set change)."""
    from ..runtime import ModelRuntime

    key = {"teacher_sha256": [ModelRuntime(t, threads=1).card.sha256 for t in teacher_specs(teacher)],
           "paths": len(train.paths), "first": train.paths[0] if train.paths else "",
           "last": train.paths[-1] if train.paths else ""}
    if path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=False)
        if saved.get("key") == key:
            log.info("teacher soft targets from %s", path)
            return saved["gender"], saved["age"]
    pg, pa = teacher_probabilities(teacher, train.crops.numpy(), threads)
    if int(os.environ.get("RANK", "0")) == 0:
        tmp = path.with_suffix(".tmp")
        torch.save({"key": key, "gender": pg, "age": pa}, tmp)
        os.replace(tmp, path)  # atomic: another rank never reads a half-written file
    return pg, pa


def teacher_targets(cfg: TrainConfig, train, out: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft targets for every training row, each source from its own teacher (``DataConfig.teacher``,
    default ``distill.teacher``); ``teacher: none`` on a source leaves its rows to their labels alone (NaN)."""
    sources = cfg.all_sources()
    if len(sources) == 1:
        return _cached_teacher(sources[0].teacher or cfg.distill.teacher, train, out / "teacher.pt", cfg.threads)
    pg = torch.full((len(train), 2), float("nan"))
    pa = torch.full((len(train), NUM_AGES), float("nan"))
    src = train.source.numpy()
    for k, (d, name) in enumerate(zip(sources, train.source_names)):
        rows = np.flatnonzero(src == k)
        teacher = d.teacher or cfg.distill.teacher
        if not teacher:
            raise DatasetError(f"source {name}: no teacher (set distill.teacher, or the source's own, or none)")
        if teacher == "none":
            continue
        g, a = _cached_teacher(teacher, train.subset(rows), out / f"teacher-{name}.pt", cfg.threads)
        pg[rows], pa[rows] = g, a
    return pg, pa


def init_weights(model: nn.Module, init: str) -> None:
    """Start from a run folder or checkpoint, or from one network of an exported ONNX model (``PATH#K``)."""
    path, _, member = init.partition("#")
    if path.endswith(".onnx"):
        from .onnx_weights import load_member_from_onnx

        load_member_from_onnx(model, path, int(member) if member else None)
        return
    ck = Path(path) / "best.pt" if Path(path).is_dir() else Path(path)
    if not ck.is_file():
        raise DatasetError(f"init: no checkpoint at {ck}")
    model.load_state_dict(torch.load(ck, map_location="cpu", weights_only=False)["model"])
    log.info("initialised from %s", ck)


def _append_metrics(path: Path, row: dict, new: bool) -> None:
    """One epoch's row of ``metrics.csv``, in the columns of the file's header (a loss part that first
    shows up in a later epoch gets no column; one missing from this epoch is left empty)."""
    if not new:
        with open(path, newline="") as fh:
            fields = next(csv.reader(fh), None)
        new = not fields
    with open(path, "w" if new else "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(row) if new else fields, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)


def _check_networks(m: ModelConfig) -> None:
    """Refuse an unknown network, or ``init_arch`` without ``init``, before any data is loaded."""
    for key, name in (("model.arch", m.arch), ("model.init_arch", m.init_arch)):
        if name and name not in list_models():
            raise DatasetError(f"{key}: unknown network {name!r}; known: {', '.join(list_models())}")
    if m.init_arch and not m.init:
        raise DatasetError("model.init_arch is the architecture of model.init's weights, and model.init is empty")


def _start(cfg: TrainConfig, rank: int, world: int) -> tuple[Path, list[Lever]]:
    """Processes, threads and seeds; the levers (checked against the config); the run folder and its
    config (rank 0)."""
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    torch.set_num_threads(max(1, cfg.threads // world))
    seed_everything(cfg.seed)
    levers = build_levers(cfg)
    if cfg.optim.ema:
        check_decay(cfg.optim.ema)
    _check_networks(cfg.model)
    out = Path(cfg.out_dir)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    return out, levers


def _training_data(cfg: TrainConfig, out: Path, rank: int, world: int):  # noqa: ANN202 - (Arrays, Arrays)
    """Train and val arrays (rank 0 builds the crop cache and the split first), with a teacher's targets."""
    if world > 1 and rank != 0:
        dist.barrier()
    arrays = load_arrays(cfg, parts=("train", "val"))
    if world > 1 and rank == 0:
        dist.barrier()
    train, val = arrays["train"], arrays["val"]
    kd = cfg.distill
    if (kd.teacher or any(d.teacher for d in cfg.all_sources())) and kd.weight > 0:
        train.soft_gender, train.soft_age = teacher_targets(cfg, train, out)
        if kd.face_teacher > 0:
            from .facefeat import embedding_cache_path, mix_face_teacher

            train.soft_gender = mix_face_teacher(
                train.soft_gender, train.paths, train.gender.numpy(), kd.face_teacher,
                embedding_cache_path(cfg.data.root, cfg.data.cache), seed=cfg.seed)
    elif kd.face_teacher > 0:
        raise DatasetError("distill.face_teacher mixes into a teacher's targets: "
                           "set distill.teacher and distill.weight > 0 too")
    return train, val


def start_network(m: ModelConfig, seed: int = 0) -> nn.Module:
    """The network a run starts from: ImageNet weights, or ``init`` (widened from ``init_arch`` with noise
    drawn from ``seed``)."""
    model = create_model(m.arch, pretrained=m.pretrained and not m.init, dropout=m.dropout)
    if m.init and m.init_arch:
        from ..models.widen import WIDEN_NOISE, widen_into

        narrow = create_model(m.init_arch, pretrained=False, dropout=m.dropout)
        init_weights(narrow, m.init)
        widen_into(narrow, model, noise=WIDEN_NOISE, seed=seed)
        log.info("widened %s into %s", m.init_arch, m.arch)
    elif m.init:
        init_weights(model, m.init)
    return model


def _new_model(cfg: TrainConfig) -> nn.Module:
    return start_network(cfg.model, cfg.seed).to(memory_format=torch.channels_last)


def _recalibrate(model: nn.Module, train, cfg: TrainConfig) -> None:  # noqa: ANN001
    """Batch-norm statistics from ``model.recalibrate_bn`` training crops drawn with the run's seed (the
    same on every rank)."""
    from .onnx_weights import recalibrate_batchnorm

    g = torch.Generator().manual_seed(cfg.seed)
    rows = torch.randperm(len(train), generator=g)[: cfg.model.recalibrate_bn]
    recalibrate_batchnorm(model, train.crops[rows])


def _optimizer(cfg: TrainConfig, model: nn.Module, n_train: int, world: int):  # noqa: ANN202
    """AdamW and its warm-up + cosine schedule over the whole run."""
    o = cfg.optim
    optimizer = torch.optim.AdamW(_param_groups(model, o.weight_decay), lr=o.lr)
    steps_per_epoch = max(1, (cfg.sampling.epoch_size or n_train) // world // o.batch_size)
    total, warm = steps_per_epoch * o.epochs, int(o.warmup_epochs * steps_per_epoch)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, warm, total))


def _resume(last: Path, model: nn.Module, optimizer, scheduler,  # noqa: ANN001
            ema: WeightAverage | None) -> tuple[int, float, int]:
    """(first epoch, best objective, epochs without improvement), from ``last.pt`` when there is one."""
    if not last.exists():
        return 0, float("inf"), 0
    ck = torch.load(last, map_location="cpu", weights_only=False)
    model.load_state_dict(ck["model"])
    optimizer.load_state_dict(ck["optimizer"])
    scheduler.load_state_dict(ck["scheduler"])
    if ema is not None and ck.get("ema") is not None:
        ema.load_state_dict(ck["ema"])
    log.info("resumed from %s at epoch %d", last, ck["epoch"] + 1)
    return ck["epoch"] + 1, ck["best"], ck["bad"]


def _end_epoch(cfg: TrainConfig, out: Path, model: nn.Module, val, row: dict, state: dict) -> bool:  # noqa: ANN001
    """Validate, log, keep ``best.pt`` and ``last.pt``; True when patience has run out. With a moving
    average of the weights (``state["ema"]``), the average is what is validated and kept as best."""
    ema = state.get("ema")
    kept = ema.module if ema is not None else model
    g, a = predict_logits(kept, val.crops)
    vm = {f"val_{k}": v for k, v in score_sources(g, a, val).items()}
    obj = vm.pop("val_objective")
    row = {**row, **vm, "val_objective": obj, "seconds": round(time.time() - state["t0"], 1),
           "lr": state["scheduler"].get_last_lr()[0]}
    _append_metrics(out / "metrics.csv", row, new=row["epoch"] == 0 or not (out / "metrics.csv").exists())
    log.info("epoch %d: %s", row["epoch"], {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
    if obj < state["best"]:
        state["best"], state["bad"] = obj, 0
        torch.save({"model": kept.state_dict(), "config": cfg.to_dict(), "epoch": row["epoch"], "val": vm},
                   out / "best.pt")
    else:
        state["bad"] += 1
    torch.save({"model": model.state_dict(), "optimizer": state["optimizer"].state_dict(),
                "scheduler": state["scheduler"].state_dict(), "epoch": row["epoch"], "best": state["best"],
                "bad": state["bad"], "config": cfg.to_dict(),
                "ema": ema.state_dict() if ema is not None else None}, out / "last.pt")
    plot_curves(out / "metrics.csv", out / "curves.png")
    return state["bad"] >= cfg.optim.patience


def _sample_weights(cfg: TrainConfig, train) -> torch.Tensor | None:  # noqa: ANN001
    """Per-row draw weights when the epoch is drawn (several sources, balance, ``epoch_size``); else None."""
    sm = cfg.sampling
    if len(cfg.all_sources()) > 1 or sm.balance > 0 or sm.group_balance > 0 or sm.epoch_size:
        return sample_weights(train, [d.weight for d in cfg.all_sources()], sm.balance, sm.balance_by,
                              sm.group_balance)
    return None


def fit(cfg: TrainConfig) -> Path:
    """Train ``cfg.model`` on ``cfg.data``; returns the run directory (best.pt, last.pt, metrics.csv...)."""
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    out, levers = _start(cfg, rank, world)
    train, val = _training_data(cfg, out, rank, world)
    model = _new_model(cfg)
    if cfg.model.recalibrate_bn:
        _recalibrate(model, train, cfg)
    weights = _sample_weights(cfg, train)
    for lever in levers:
        lever.prepare(cfg, train)
    ddp_model = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer, scheduler = _optimizer(cfg, model, len(train), world)
    ema = WeightAverage(model, cfg.optim.ema) if cfg.optim.ema else None
    start, best, bad = _resume(out / "last.pt", model, optimizer, scheduler, ema)
    state = {"best": best, "bad": bad, "optimizer": optimizer, "scheduler": scheduler, "ema": ema}
    for epoch in range(start, cfg.optim.epochs):
        state["t0"] = time.time()
        tr = train_one_epoch(ddp_model, train, optimizer, scheduler, cfg, epoch, rank, world, weights, levers,
                             ema)
        stop = rank == 0 and _end_epoch(cfg, out, model, val, {"epoch": epoch, **tr}, state)
        if world > 1:
            dist.barrier()
            stop_t = torch.tensor([int(stop)])
            dist.broadcast(stop_t, 0)
            stop = bool(stop_t.item())
        if stop:
            log.info("early stop at epoch %d (no improvement for %d epochs)", epoch, state["bad"])
            break
    if world > 1:
        dist.destroy_process_group()
    return out
