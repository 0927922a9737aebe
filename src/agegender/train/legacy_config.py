"""Configs in the old flat form (before the nested blocks): where each old key lives now.

Every YAML recipe, run folder (``config.json``, the checkpoints' ``config``) and model card written before
the blocks keeps loading: :func:`migrate` moves each old key to its new place and logs one warning that
names the new keys. ``MOVED`` is the one table of the move.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from ..errors import DatasetError

log = logging.getLogger(__name__)

#: old flat key -> its dotted place in the nested config
MOVED: dict[str, str] = {
    "model": "model.arch", "pretrained": "model.pretrained", "input_size": "model.input_size",
    "margin": "model.margin", "border": "model.border", "dropout": "model.dropout", "init": "model.init",
    "freeze_bn": "model.freeze_bn",
    "epochs": "optim.epochs", "batch_size": "optim.batch_size", "lr": "optim.lr",
    "weight_decay": "optim.weight_decay", "warmup_epochs": "optim.warmup_epochs", "patience": "optim.patience",
    "label_sigma": "loss.label_sigma", "age_l1_weight": "loss.age_l1_weight", "gender_weight": "loss.gender_weight",
    "label_smoothing": "loss.label_smoothing",
    "max_rotate": "augment.max_rotate", "degrade": "augment.degrade",
    "epoch_size": "sampling.epoch_size", "balance": "sampling.balance", "balance_by": "sampling.balance_by",
    "group_balance": "sampling.group_balance",
    "teacher": "distill.teacher", "distill": "distill.weight", "face_teacher": "distill.face_teacher",
    "context_mask": "levers.context_mask.p", "hair_dropout": "levers.hair_dropout.p",
    "reencode": "levers.reencode.p", "unjudgeable": "levers.unjudgeable.p", "domain_aug": "levers.domain_aug.p",
    "old_print": "levers.old_print.p",
}
#: old keys that have no place any more, and why (none so far: every old key has moved)
RETIRED: dict[str, str] = {}

_warned: set[str] = set()


def is_old(key: str, value: Any) -> bool:
    """Whether a top-level ``key: value`` is in the old flat form (``model`` and ``distill`` are blocks now:
    old when they are not mappings)."""
    return key in MOVED and not isinstance(value, dict)


def retired(key: str, where: str) -> DatasetError | None:
    """The error for a retired old key, None for any other key."""
    if key in RETIRED:
        return DatasetError(f"{where}: config key {key!r} of the old flat form has no place any more: {RETIRED[key]}")
    return None


def warn_once(message: str) -> None:
    """Log a migration warning, once per process for the same words (a card read in a loop says it once)."""
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


def _place(out: dict[str, Any], dotted: str, value: Any, where: str, old: str) -> None:
    *blocks, leaf = dotted.split(".")
    node = out
    for b in blocks:
        node = node.setdefault(b, {})
        if not isinstance(node, dict):
            raise DatasetError(f"{where}: {b} must be a mapping of its keys")
    if leaf in node:
        raise DatasetError(f"{where}: {dotted} is given twice, as {old} (old flat form) and as {dotted}")
    node[leaf] = value


def migrate(d: dict[str, Any], where: str) -> dict[str, Any]:
    """``d`` with every old flat key moved to its nested place (a copy; nested configs come back equal)."""
    old = [k for k, v in d.items() if is_old(k, v)]
    for k in d:
        err = retired(k, where)
        if err:
            raise err
    if not old:
        return d
    out = {k: copy.deepcopy(v) for k, v in d.items() if k not in old}
    for k in old:
        _place(out, MOVED[k], d[k], where, k)
    moves = [f"{k} -> {MOVED[k]}" for k in old]
    more = f" and {len(moves) - 4} more (train/legacy_config.py)" if len(moves) > 4 else ""
    warn_once(f"{where}: old flat config keys, read as " + ", ".join(moves[:4]) + more)
    return out
