"""Grad-CAM on the backbone's last feature map, for the gender logit and the expected age."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .augment import normalize
from .export import load_run_model


def gradcam_maps(run_dir: str | Path, crops: np.ndarray) -> dict[str, np.ndarray]:
    """{"gender": (N, h, w), "age": (N, h, w)} maps in [0, 1] for uint8 NHWC crops."""
    model, _ = load_run_model(run_dir)
    model.eval()
    x = normalize(torch.from_numpy(np.ascontiguousarray(crops)))
    out: dict[str, np.ndarray] = {}
    for target in ("gender", "age"):
        feats: list[torch.Tensor] = []

        def hook(_m, _i, o, feats=feats):
            o.retain_grad()
            feats.append(o)

        h = model.backbone.features.register_forward_hook(hook)
        g, a, _ = model(x)
        h.remove()
        if target == "gender":
            score = g.gather(1, g.argmax(1, keepdim=True)).sum()
        else:
            years = torch.arange(a.shape[1], dtype=torch.float32)
            score = (a.softmax(1) * years).sum()
        model.zero_grad()
        score.backward()
        f = feats[0]
        w = f.grad.mean(dim=(2, 3), keepdim=True)
        cam = torch.relu((w * f).sum(1)).detach()
        cam = cam / (cam.amax(dim=(1, 2), keepdim=True) + 1e-8)
        out[target] = cam.numpy()
    return out
