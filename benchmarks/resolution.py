#!/usr/bin/env python3
"""How much does a model lose when its aligned crops carry less detail? Prints a Markdown table.

Each cached aligned crop of one split part is shrunk to ``s`` x ``s`` pixels (bilinear, antialiased) and
blown back up to the model's input size, so the network sees the same geometry with the detail of an
``s``-pixel crop. If accuracy holds as ``s`` falls, a larger input size is not where to look for more
accuracy. Needs the ``train`` extra (PyTorch, the crop cache) and the UTKFace images beside the repository.

usage:
  .venv/bin/python benchmarks/resolution.py [--config configs/attn_mbv2_kd-utkface.yaml]
      [--part val] [--models default] [--sizes 48,64,80,96] [--out resolution.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from _common import REPO, cached_parts, md_table, score_probs


def degrade(crops: np.ndarray, size: int) -> np.ndarray:
    """uint8 NHWC crops at ``size`` px of detail, returned at their original size."""
    import torch

    from agegender.train.augment import lose_detail

    x = lose_detail(torch.from_numpy(crops).permute(0, 3, 1, 2).float(), size)
    return x.round().clamp(0, 255).byte().permute(0, 2, 3, 1).contiguous().numpy()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "configs" / "attn_mbv2_kd-utkface.yaml"),
                    help="training config whose data section (dataset, split, crop cache) is used")
    ap.add_argument("--part", default="val", choices=("train", "val", "test"))
    ap.add_argument("--models", default="default", help="comma-separated built-in names or card paths")
    ap.add_argument("--sizes", default="48,64,80,96", help="comma-separated detail sizes in px")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="also write the rows as JSON here")
    args = ap.parse_args(argv)

    from agegender.train.trainer import teacher_probabilities

    arr = cached_parts(args.config, (args.part,), args.threads)[args.part]
    crops, gender, age = arr.crops.numpy(), arr.gender.numpy(), arr.age.numpy()
    sizes = [int(s) for s in args.sizes.split(",")] + [crops.shape[1]]
    rows, out = [], []
    for model in args.models.split(","):
        for s in sizes:
            x = crops if s == crops.shape[1] else degrade(crops, s)
            pg, pa = teacher_probabilities(model, x, threads=args.threads)
            r = score_probs(pg.numpy(), pa.numpy(), gender, age)
            out.append({"model": model, "detail_px": s, **{k: r[k] for k in ("gender_right", "n",
                                                                               "gender_accuracy", "age_mae")}})
            rows.append([model, f"{s}" + (" (as trained)" if s == crops.shape[1] else ""),
                         f"{r['gender_right']} / {r['n']} ({100 * r['gender_accuracy']:.1f} %)", f"{r['age_mae']:.2f}"])
    print(md_table(["model", "detail (px)", f"{args.part} gender right", "age MAE"], rows))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
