"""Weight interpolation between a fine-tuned run and the network it started from (WiSE-FT).

A network fine-tuned for a new domain (say, scanned prints) from a converged one often sits in the same
basin: the weights on the line between the two keep most of the start's accuracy on its own data and most of
the fine-tune's robustness (Wortsman et al. 2022, "Robust fine-tuning of zero-shot models"). ``alpha`` is
the share of the fine-tuned weights: 0 gives the start back, 1 the fine-tuned run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from ..errors import DatasetError
from ..models import create_model
from .config import ModelConfig, canonical
from .export import load_run_model
from .trainer import init_weights, start_network

log = logging.getLogger(__name__)


def interpolate_state(start: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor],
                      alpha: float) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * start + alpha * tuned`` for every floating tensor; counters come from ``tuned``."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    if start.keys() != tuned.keys():
        missing = sorted(set(start) ^ set(tuned))[:3]
        raise DatasetError(f"the two networks differ in their parameters (e.g. {missing})")
    out = {}
    for name, t in tuned.items():
        s = start[name]
        if s.shape != t.shape:
            raise DatasetError(f"{name}: shape {tuple(s.shape)} against {tuple(t.shape)}")
        out[name] = torch.lerp(s.float(), t.float(), alpha).to(t.dtype) if t.is_floating_point() else t.clone()
    return out


def interpolate_run(run_dir: str | Path, alpha: float, out_dir: str | Path, start: str = "") -> Path:
    """Write ``out_dir/best.pt``: the run's best weights moved back towards ``start`` (default: the run's own
    ``init``: a run folder, a checkpoint or ``model.onnx#K``). The config is the run's, renamed, with the
    interpolation recorded, so exports and cards name both ends."""
    if not (Path(run_dir) / "best.pt").is_file():
        raise DatasetError(f"{run_dir}: best.pt not found (is it a training run folder?)")
    tuned_model, ck = load_run_model(run_dir)
    cfg: dict[str, Any] = canonical(ck["config"], f"{run_dir}/best.pt")
    if start:
        start_model = create_model(cfg["model"]["arch"], pretrained=False, dropout=cfg["model"]["dropout"])
        init_weights(start_model, start)
    elif cfg["model"]["init"]:
        start = cfg["model"]["init"]
        start_model = start_network(ModelConfig(**cfg["model"]), cfg["seed"])
    else:
        raise DatasetError(f"{run_dir}: its config has no init; pass the start network")
    state = interpolate_state(start_model.state_dict(), tuned_model.state_dict(), alpha)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg.update(name=out.name, out_dir=str(out_dir),
               interpolated={"start": start, "tuned": str(run_dir), "alpha": alpha})
    torch.save({"model": state, "config": cfg, "epoch": ck.get("epoch", -1), "val": {}}, out / "best.pt")
    log.info("%s: %.2f of %s + %.2f of %s", out / "best.pt", alpha, run_dir, 1 - alpha, start)
    return out
