#!/usr/bin/env python3
"""Crop level: a network's gender accuracy on training crops beside val crops, per source.

Up to ``--n`` random crops of each source's training part and of its val part, no augmentation, one
pass, uncalibrated. When the training figure is no higher than the val one, the network does not fit the data it
learned from. Written for docs/lab/2026-12-06-fairface-5.md.

    python experiments/benchmarks/fit_check.py runs/ff-e-i3 [--config configs/ff-e.yaml] [--n 3000]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from agegender.train.config import load_config
from agegender.train.dataset import load_arrays
from agegender.train.engine import predict_logits, score
from agegender.train.export import load_run_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a run folder or model.onnx#K")
    ap.add_argument("--config", default="configs/ff-e.yaml", help="the recipe whose crops to use")
    ap.add_argument("--n", type=int, default=3000, help="crops per source and part, at most")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    arrays = load_arrays(load_config(args.config), parts=("train", "val"))
    net = load_run_model(args.run)[0].eval().to(memory_format=torch.channels_last)
    rng = np.random.default_rng(0)
    for part in ("train", "val"):
        data = arrays[part]
        for i, source in enumerate(data.source_names):
            rows = np.flatnonzero(data.source.numpy() == i)
            rows = rng.choice(rows, min(args.n, len(rows)), replace=False)
            sub = data.subset(rows)
            g, a = predict_logits(net, sub.crops)
            print(f"{part:5s} {source:9s} {len(rows):5d} crops: gender {100 * score(g, a, sub)['gender_acc']:.1f} %",
                  flush=True)


if __name__ == "__main__":
    main()
