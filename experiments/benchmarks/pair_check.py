#!/usr/bin/env python3
"""Crop level: two networks that read different crops (two recipes), alone and averaged, on the val parts.

The first network is also scored with its mirror image (the shipped default's second pass). Both recipes
must list the same val rows in the same order (the same sources and splits; only size or margin differ).
Uncalibrated; probabilities averaged. Written for docs/lab/2026-12-06-fairface-5.md.

    python experiments/benchmarks/pair_check.py runs/ff-e-i3 configs/ff-e.yaml runs/ff-i experiments/configs/ff-i.yaml
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from agegender.postprocess import softmax
from agegender.train.config import load_config
from agegender.train.dataset import load_arrays
from agegender.train.engine import objective, predict_logits, score
from agegender.train.export import load_run_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_a")
    ap.add_argument("config_a")
    ap.add_argument("run_b")
    ap.add_argument("config_b")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    val_a = load_arrays(load_config(args.config_a), parts=("val",))["val"]
    val_b = load_arrays(load_config(args.config_b), parts=("val",))["val"]
    if list(val_a.paths) != list(val_b.paths):
        raise SystemExit("the two recipes' val parts do not hold the same rows in the same order")

    def probs(run: str, crops: torch.Tensor, flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
        net = load_run_model(run)[0].eval().to(memory_format=torch.channels_last)
        g, a = predict_logits(net, crops, flip=flip)
        return softmax(g), softmax(a)

    p = {"A": probs(args.run_a, val_a.crops), "A + mirror": probs(args.run_a, val_a.crops, flip=True),
         "B": probs(args.run_b, val_b.crops)}
    p["A + B"] = tuple((x + y) / 2 for x, y in zip(p["A"], p["B"]))
    src = val_a.source.numpy()
    for name, (g, a) in p.items():
        line, objs = f"{name:10s}", []
        for i, source in enumerate(val_a.source_names):
            rows = np.flatnonzero(src == i)
            sc = score(np.log(g[rows] + 1e-9), np.log(a[rows] + 1e-9), val_a.subset(rows))
            objs.append(objective(sc))
            line += f" | {source}: " + " ".join(f"{k} {v:.4f}" for k, v in sc.items())
        print(f"{line} | mean objective {np.mean(objs):.4f}", flush=True)


if __name__ == "__main__":
    main()
