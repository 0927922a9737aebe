#!/usr/bin/env python3
"""Crop level: a greyscale mirror pass in place of the colour one, against greyscale flips and accuracy.

A network's answers on the cached val crops of a recipe (112 px by default) and on their greyscale copies,
with three second passes: none, the colour mirror image (the shipped default's), and the mirror image in
greyscale (so that a greyscale photo gets the same second pass as its colour original). Uncalibrated;
the two passes' probabilities are averaged. Written for docs/lab/2026-12-06-fairface-4.md.

    python experiments/benchmarks/grey_mirror.py runs/ff-e-i3 [--config configs/ff-e.yaml]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from agegender.postprocess import softmax
from agegender.train.config import load_config
from agegender.train.dataset import load_arrays
from agegender.train.engine import predict_logits, score
from agegender.train.export import load_run_model
from agegender.train.levers.reencode import resave


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a run folder or model.onnx#K")
    ap.add_argument("--config", default="configs/ff-e.yaml", help="the recipe whose val crops to use")
    args = ap.parse_args()
    torch.set_num_threads(1)
    val = load_arrays(load_config(args.config), parts=("val",))["val"]
    net = load_run_model(args.run)[0].eval().to(memory_format=torch.channels_last)
    views = {"x": val.crops, "g": torch.stack([resave(c, "grey") for c in val.crops])}

    def probs(view: str, mirror: bool) -> tuple[np.ndarray, np.ndarray]:
        crops = views[view]
        g, a = predict_logits(net, torch.flip(crops, dims=[2]) if mirror else crops)
        return softmax(g), softmax(a)

    p = {(v, m): probs(v, m) for v in views for m in (False, True)}
    mean = lambda a, b: tuple((u + w) / 2 for u, w in zip(a, b))  # noqa: E731
    second = {"none": lambda v: p[(v, False)],
              "colour mirror": lambda v: mean(p[(v, False)], p[(v, True)]),
              "greyscale mirror": lambda v: mean(p[(v, False)], p[("g", True)])}
    src = val.source.numpy()
    for name, answer in second.items():
        (gx, ax), (gg, _) = answer("x"), answer("g")
        flips = gx.argmax(1) != gg.argmax(1)
        line = f"{name:17s}"
        for i, source in enumerate(val.source_names):
            rows = np.where(src == i)[0]
            sc = score(np.log(gx[rows] + 1e-9), np.log(ax[rows] + 1e-9), val.subset(rows))
            line += f" | {source}: grey flips {100 * flips[rows].mean():.2f} % " + " ".join(
                f"{k} {v:.4f}" for k, v in sc.items())
        print(line, flush=True)


if __name__ == "__main__":
    main()
