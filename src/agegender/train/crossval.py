"""k-fold cross-validation: one training run per fold, per-fold reports and the mean ± std."""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..eval.metrics import mean_std
from .config import TrainConfig
from .dataset import load_arrays
from .engine import predict_logits, score
from .export import load_run_model
from .trainer import fit

log = logging.getLogger(__name__)


@dataclass
class CVResult:
    folds: list[dict[str, float]] = field(default_factory=list)
    out_dir: str = ""

    def summary(self) -> dict[str, str]:
        keys = sorted({k for f in self.folds for k in f})
        return {k: str(mean_std([f[k] for f in self.folds if k in f])) for k in keys}

    def markdown(self) -> str:
        keys = sorted({k for f in self.folds for k in f})
        lines = ["| fold | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for i, f in enumerate(self.folds):
            lines.append(f"| {i} | " + " | ".join(f"{f.get(k, float('nan')):.4f}" for k in keys) + " |")
        s = self.summary()
        lines.append("| mean ± std | " + " | ".join(s[k] for k in keys) + " |")
        return "\n".join(lines)


def write_fold_report(val, gender_logits: np.ndarray, age_logits: np.ndarray, out: Path, title: str) -> None:
    """The full evaluation report (metrics.json, report.md, plots) for one fold's validation images."""
    from ..eval.predictions import PredRow
    from ..eval.report import evaluate_records
    from ..postprocess import softmax

    pa = softmax(age_logits)
    pf = softmax(gender_logits)[:, 1]
    ages = pa @ np.arange(pa.shape[1])
    preds = [PredRow(p, float(a), float(f), "female" if f >= 0.5 else "male", 1)
             for p, a, f in zip(val.paths, ages, pf)]
    evaluate_records(val.records, preds, out, title, "agegender cv CONFIG")


def cross_validate(cfg: TrainConfig, folds: int = 5) -> CVResult:
    """Train on k-1 folds, validate on the held-out fold, for each fold; the test part is never used."""
    root = Path(cfg.out_dir)
    result = CVResult(out_dir=str(root))
    for k in range(folds):
        c = copy.deepcopy(cfg)
        c.cv_fold = k
        c.out_dir = str(root / f"fold_{k}")
        fit(c)
        model, _ = load_run_model(c.out_dir)
        val = load_arrays(c, parts=("val",))["val"]
        g, a = predict_logits(model.to(memory_format=torch.channels_last), val.crops, flip=True)
        m = score(g, a, val)
        (Path(c.out_dir) / "fold_metrics.json").write_text(json.dumps(m, indent=1))
        write_fold_report(val, g, a, Path(c.out_dir) / "report", f"{cfg.name}: fold {k}")
        result.folds.append(m)
        log.info("fold %d: %s", k, m)
    (root / "cv_metrics.json").write_text(json.dumps({"folds": result.folds, "summary": result.summary()}, indent=1))
    (root / "cv_report.md").write_text(f"# Cross-validation: {cfg.name}\n\n{result.markdown()}\n")
    return result

