#!/usr/bin/env python3
"""Do features learned for identity on millions of faces tell FairFace's gender better than our network?

dlib's face-recognition embedding (``agegender.train.facefeat``; needs ``pip install '.[facefeat]'``) of each
FairFace val image, a logistic regression cross-fitted over the val part (5 folds, so no image is scored by
a classifier that saw it), against a run's network (and its mirror pass) on the same images' crops, and
mixed with it; gender accuracy overall and by age band. Crop level, uncalibrated. The embeddings are kept
beside the crop cache (``facefeat.embedding_cache_path``; about 65 ms an image on one core the first time).
Written for docs/lab/2026-12-06-fairface-6.md.

    python experiments/benchmarks/face_embedding_probe.py runs/ff-e-i3 --config configs/ff-e.yaml
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from agegender.eval.metrics import FAIRFACE9
from agegender.postprocess import softmax
from agegender.train.config import load_config
from agegender.train.dataset import load_arrays
from agegender.train.engine import predict_logits
from agegender.train.export import load_run_model
from agegender.train.facefeat import cached_embeddings, crossfit_gender, embedding_cache_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--config", default="configs/ff-e.yaml")
    ap.add_argument("--source", default="fairface")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    val = load_arrays(cfg, parts=("val",))["val"]
    rows = np.flatnonzero(val.source.numpy() == val.source_names.index(args.source))
    part = val.subset(rows)
    src = next(s for s in cfg.all_sources() if (s.name or s.dataset) == args.source)
    emb = cached_embeddings(list(part.paths), embedding_cache_path(src.root, src.cache))
    gender, low = part.gender.numpy(), part.age_low.numpy()
    net = load_run_model(args.run)[0].eval().to(memory_format=torch.channels_last)
    p_net = softmax(predict_logits(net, part.crops)[0])[:, 1]
    p_both = softmax(predict_logits(net, part.crops, flip=True)[0])[:, 1]
    p_emb = crossfit_gender(emb, gender)
    answers = {"network": p_net, "network + mirror": p_both, "embedding + logistic regression": p_emb}
    for w in (0.3, 0.5):
        answers[f"network + mirror, {w:.0%} embedding"] = (1 - w) * p_both + w * p_emb
    print(f"{args.source} val, {len(rows)} crops, gender accuracy\n")
    print("| answer | all | " + " | ".join(FAIRFACE9.labels) + " |")
    print("|---|---|" + "---|" * len(FAIRFACE9))
    for name, p in answers.items():
        ok = (p >= 0.5) == (gender == 1)
        bands = " | ".join(f"{ok[low == lo].mean():.1%}" if (low == lo).any() else "–" for lo, _ in FAIRFACE9.ranges)
        print(f"| {name} | {ok.mean():.1%} | {bands} |")


if __name__ == "__main__":
    main()
