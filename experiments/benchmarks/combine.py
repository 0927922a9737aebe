#!/usr/bin/env python3
"""Which networks to average? Scores every combination of exported single networks, with and without
the mirror pass, on the cached crops of the validation and test parts; prints a Markdown table sorted by
the validation objective (age MAE + 20 x gender error, the early-stopping objective of training).

Each member runs through ONNX Runtime with its own calibrated temperatures; probabilities are averaged
as ``agegender export RUN [RUN ...]`` averages them (before the ensemble's own calibration, which does
not change gender decisions). Choose on the validation columns; the test columns are there to report.
Needs the ``train`` extra and the UTKFace images beside the repository.

usage:
  .venv/bin/python experiments/benchmarks/combine.py D=runs/d.json S3=runs/s3.json [...] [--parts val,test]
      [--config configs/attn_mbv2_kd-utkface.yaml] [--max-members 4] [--out combos.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # _common
from _common import REPO, cached_parts, md_table, score_probs  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("members", nargs="+", metavar="LABEL=CARD", help="single-network model cards (or built-in names)")
    ap.add_argument("--config", default=str(REPO / "configs" / "attn_mbv2_kd-utkface.yaml"),
                    help="training config whose data section (dataset, split, crop cache) is used")
    ap.add_argument("--parts", default="val,test")
    ap.add_argument("--max-members", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    members = dict(m.split("=", 1) for m in args.members)
    parts = args.parts.split(",")

    from agegender.train.trainer import teacher_probabilities

    arrays = cached_parts(args.config, tuple(parts), args.threads)
    probs: dict[tuple[str, str, bool], tuple[np.ndarray, np.ndarray]] = {}
    for part in parts:
        crops = arrays[part].crops.numpy()
        for label, card in members.items():
            for mirror in (False, True):
                x = np.ascontiguousarray(crops[:, :, ::-1]) if mirror else crops
                pg, pa = teacher_probabilities(card, x, threads=args.threads)
                probs[(part, label, mirror)] = pg.numpy(), pa.numpy()

    def score(part: str, combo: tuple[str, ...], mirror: bool) -> dict[str, float]:
        views = [probs[(part, m, f)] for m in combo for f in ((False, True) if mirror else (False,))]
        pg = np.mean([v[0] for v in views], 0)
        pa = np.mean([v[1] for v in views], 0)
        return score_probs(pg, pa, arrays[part].gender.numpy(), arrays[part].age.numpy())

    rows = []
    for k in range(1, min(args.max_members, len(members)) + 1):
        for combo in itertools.combinations(members, k):
            for mirror in (False, True):
                rows.append({"members": list(combo), "mirror": mirror, "passes": len(combo) * (2 if mirror else 1),
                             **{p: score(p, combo, mirror) for p in parts}})
    rows.sort(key=lambda r: r[parts[0]]["objective"])
    header = ["members", "passes"]
    for p in parts:
        header += [f"{p} gender right", f"{p} MAE", f"{p} objective"]
    table = []
    for r in rows:
        line = [" + ".join(r["members"]) + (" + mirror" if r["mirror"] else ""), str(r["passes"])]
        for p in parts:
            s = r[p]
            line += [f"{s['gender_right']} / {s['n']}", f"{s['age_mae']:.2f}", f"{s['objective']:.3f}"]
        table.append(line)
    print(md_table(header, table))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
