#!/usr/bin/env python3
"""Paired comparison of two `agegender evaluate` runs over the same photos: the mean difference of the
per-photo |age error| with its standard error, and the gender decisions only one of the two got right.
Labels come from the dataset's own adapter (the `--data` spec of `agegender evaluate`), matched by file name.

usage:
  python benchmarks/paired.py A/predictions.csv B/predictions.csv --data utkface:../shared/data/utkface
  python benchmarks/paired.py A/predictions.csv B/predictions.csv --data aaf:../data/aaf
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from agegender.data.datasets import load_records
from agegender.eval.report import parse_data_spec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--data", required=True, help="DATASET:PATH, as for `agegender evaluate`")
    args = ap.parse_args(argv)
    labels = {Path(r.path).name: r for r in load_records(*parse_data_spec(args.data)) if r.age is not None}
    runs = []
    for p in (args.a, args.b):
        with open(p, newline="") as fh:
            runs.append({Path(r["file"]).name: r for r in csv.DictReader(fh) if r.get("age")})
    ea, eb, ra, rb = [], [], [], []
    for name in sorted(set(runs[0]) & set(runs[1]) & set(labels)):
        rec = labels[name]
        ea.append(abs(float(runs[0][name]["age"]) - rec.age))
        eb.append(abs(float(runs[1][name]["age"]) - rec.age))
        ra.append(runs[0][name]["gender"] == rec.gender)
        rb.append(runs[1][name]["gender"] == rec.gender)
    ea, eb, ra, rb = map(np.asarray, (ea, eb, ra, rb))
    d = eb - ea
    print(f"| photos | MAE A | MAE B | B - A (SE) | gender right A | gender right B | only A | only B |\n"
          f"|---|---|---|---|---|---|---|---|\n"
          f"| {len(d)} | {ea.mean():.3f} | {eb.mean():.3f} | {d.mean():+.3f} ({d.std(ddof=1) / np.sqrt(len(d)):.3f}) "
          f"| {ra.sum()} | {rb.sum()} | {(ra & ~rb).sum()} | {(rb & ~ra).sum()} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
