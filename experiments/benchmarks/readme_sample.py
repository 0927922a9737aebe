#!/usr/bin/env python3
"""What networks, alone and in pairs, say about the README's sample photo (scikit-image's astronaut).

A diagnostic, looked at and not tuned to (issue 12): the face is detected and aligned once, as the pipeline
does, and each network (a run folder or ``model.onnx#K``, in PyTorch, one pass, temperature 1) is scored on
the crop as it is, on the photo blurred by 2 px, and on the crop with its hair covered (the stress subset of
that name). Pairs average the probabilities, as an exported ensemble does.

    python experiments/benchmarks/readme_sample.py V1=runs/default-v3/model.onnx#1 L=runs/xd-long [LABEL=RUN ...]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # _common
from _common import md_table  # noqa: E402
from combine_sources import member_probs  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("networks", nargs="+", metavar="LABEL=RUN_OR_ONNX#K")
    ap.add_argument("--pairs", action="store_true", help="also every pair of networks")
    args = ap.parse_args()
    import torch
    from skimage import data

    from agegender.eval.stress import TRANSFORMS
    from agegender.predictor import Predictor

    predictor = Predictor()
    photo = data.astronaut()
    blurred = np.asarray(Image.fromarray(photo).filter(ImageFilter.GaussianBlur(2)))
    crops = {name: predictor.align(img, predictor.detect(img)[0]) for name, img in
             (("as it is", photo), ("photo blurred 2 px", blurred))}
    crops["hair covered"] = TRANSFORMS["hair covered (sides and top)"](crops["as it is"][None], 1.0)[0]
    batch = torch.from_numpy(np.stack(list(crops.values())))
    probs = {}
    for item in args.networks:
        label, _, path = item.partition("=")
        pg, pa = member_probs(path, batch, mirror=False)
        probs[label] = (pg[:, 1], pa)
    groups = [(k,) for k in probs] + (list(itertools.combinations(probs, 2)) if args.pairs else [])
    rows = []
    for group in groups:
        pf = np.mean([probs[k][0] for k in group], axis=0)
        age = np.mean([probs[k][1] for k in group], axis=0) @ np.arange(probs[group[0]][1].shape[1])
        rows.append([" + ".join(group)] + [f"{'female' if p > 0.5 else 'male'} {100 * max(p, 1 - p):.0f} % / {y:.1f}"
                                          for p, y in zip(pf, age)])
    print("scikit-image's astronaut (Eileen Collins, about 42 when photographed); gender / expected age\n")
    print(md_table(["networks"] + list(crops), rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
