#!/usr/bin/env python3
"""Paired comparison of two `agegender evaluate` runs over the same photos: the mean difference of the
per-photo |age error| with its standard error, and the gender decisions only one of the two got right.

usage:
  python benchmarks/paired.py A/predictions.csv B/predictions.csv --labels utkface
  python benchmarks/paired.py A/predictions.csv B/predictions.csv --labels aaf --aaf-list ../data/aaf/image_sets/val.txt
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

import numpy as np


def _utkface(path: str, _genders: dict[str, str]) -> tuple[int, str] | None:
    m = re.match(r"(\d+)_([01])_", Path(path).name)
    return (int(m.group(1)), "female" if m.group(2) == "1" else "male") if m else None


def _aaf(path: str, genders: dict[str, str]) -> tuple[int, str] | None:
    m = re.search(r"A(\d+)\.jpg$", Path(path).name)
    g = genders.get(Path(path).name)
    return (int(m.group(1)), g) if m and g else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--labels", choices=("utkface", "aaf"), default="utkface")
    ap.add_argument("--aaf-list", default="../data/aaf/image_sets/val.txt", help="AAF list: FILE 0|1 (1 = male)")
    args = ap.parse_args(argv)
    genders: dict[str, str] = {}
    if args.labels == "aaf":
        for line in Path(args.aaf_list).read_text().split("\n"):
            if line.strip():
                f, g = line.split()
                genders[f] = "male" if g == "1" else "female"
    label = _utkface if args.labels == "utkface" else _aaf
    runs = []
    for p in (args.a, args.b):
        with open(p, newline="") as fh:
            runs.append({r["file"]: r for r in csv.DictReader(fh) if r.get("age")})
    ea, eb, ra, rb = [], [], [], []
    for f in sorted(set(runs[0]) & set(runs[1])):
        lab = label(f, genders)
        if lab is None:
            continue
        age, g = lab
        ea.append(abs(float(runs[0][f]["age"]) - age))
        eb.append(abs(float(runs[1][f]["age"]) - age))
        ra.append(runs[0][f]["gender"] == g)
        rb.append(runs[1][f]["gender"] == g)
    ea, eb, ra, rb = map(np.asarray, (ea, eb, ra, rb))
    d = eb - ea
    print(f"| photos | MAE A | MAE B | B - A (SE) | gender right A | gender right B | only A | only B |\n"
          f"|---|---|---|---|---|---|---|---|\n"
          f"| {len(d)} | {ea.mean():.3f} | {eb.mean():.3f} | {d.mean():+.3f} ({d.std(ddof=1) / np.sqrt(len(d)):.3f}) "
          f"| {ra.sum()} | {rb.sum()} | {(ra & ~rb).sum()} | {(rb & ~ra).sum()} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
