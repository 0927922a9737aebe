#!/usr/bin/env python3
"""Crop level: candidate networks, one pass and with their mirror image, against a reference network with its
mirror image (the shipped default's two passes), paired on the same val crops.

For each source: the scores of ``agegender.train.engine.score``, and against the reference the mean paired
difference in absolute age error (sources with exact ages) and in gender right, each with its standard error.
The line's ``obj`` is the mean of the per-source objectives (the selection rule). Uncalibrated. Written for
docs/lab/2026-12-06-fairface-8.md.

    python experiments/benchmarks/paired_candidates.py runs/ff-e-i3 runs/ff-x-i35 runs/ff-x
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from agegender.postprocess import softmax
from agegender.train.config import load_config
from agegender.train.dataset import load_arrays
from agegender.train.engine import YEARS, objective, predict_logits, score
from agegender.train.export import load_run_model


def passes(run: str, crops: torch.Tensor) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(gender, age) probabilities of one pass, and of the pass averaged with the mirrored crop's."""
    net = load_run_model(run)[0].eval().to(memory_format=torch.channels_last)
    g1, a1 = (softmax(v) for v in predict_logits(net, crops))
    g2, a2 = (softmax(v) for v in predict_logits(net, torch.flip(crops, dims=[2])))
    return (g1, a1), ((g1 + g2) / 2, (a1 + a2) / 2)


def line(label: str, probs: tuple[np.ndarray, np.ndarray], ref: tuple[np.ndarray, np.ndarray], val) -> str:  # noqa: ANN001
    g, a = probs
    src, age, gender, years = val.source.numpy(), val.age.numpy(), val.gender.numpy(), YEARS.numpy()
    objs, parts = [], []
    for i, name in enumerate(val.source_names):
        rows = np.flatnonzero(src == i)
        sc = score(np.log(g[rows] + 1e-9), np.log(a[rows] + 1e-9), val.subset(rows))
        objs.append(objective(sc))
        text = f"{name}: " + " ".join(f"{k} {v:.4f}" for k, v in sc.items())
        exact = rows[age[rows] >= 0]
        if len(exact):
            d = np.abs(a[exact] @ years - age[exact]) - np.abs(ref[1][exact] @ years - age[exact])
            text += f"; MAE vs ref {d.mean():+.3f} ± {d.std() / np.sqrt(len(d)):.3f}"
        known = rows[gender[rows] >= 0]
        d = (g[known].argmax(1) == gender[known]).astype(float) - (ref[0][known].argmax(1) == gender[known])
        text += f"; gender vs ref {100 * d.mean():+.2f} ± {100 * d.std() / np.sqrt(len(d)):.2f} points"
        parts.append(text)
    return f"{label}: obj {np.mean(objs):.4f}\n  " + "\n  ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reference", help="run folder of the reference network (scored with its mirror image)")
    ap.add_argument("candidates", nargs="+", help="run folders")
    ap.add_argument("--config", default="configs/ff-e.yaml", help="the recipe whose val crops to use")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    val = load_arrays(load_config(args.config), parts=("val",))["val"]
    one, ref = passes(args.reference, val.crops)
    print(line(f"{args.reference} + mirror (reference)", ref, ref, val))
    print(line(f"{args.reference} one pass", one, ref, val), flush=True)
    for run in args.candidates:
        one, two = passes(run, val.crops)
        print(line(f"{run} one pass", one, ref, val))
        print(line(f"{run} + mirror", two, ref, val), flush=True)


if __name__ == "__main__":
    main()
