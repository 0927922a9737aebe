#!/usr/bin/env python3
"""Our predictor run under the same protocol as the peer scripts in ../shared/peers/.

usage: .venv/bin/python benchmarks/ours_run.py IMAGE_DIR OUT.csv [--crop] [--repeat N] [--threads T] [--model M]

  default    RetinaFace detection + 5-point alignment + our ONNX model; the largest face is kept
  --crop     each image is one already-cropped face (``Predictor.predict(..., aligned=True)``, no detection)
  --repeat   run each image N times and write the median wall time (ms) per image
  --threads  ONNX Runtime threads (0: ONNX Runtime decides)

Timing protocol (the one ../shared/peers/README.md describes for the peers): images are decoded before
the clock starts; one warm-up call on the first image; ``ms`` = median wall time of ``Predictor.predict``
on the decoded array (detection, alignment and model), one image per call.

CSV columns: file,age,gender,gender_prob,p_female,n_faces,face_box,ms
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time

from agegender import Predictor
from agegender.errors import AgeGenderError
from agegender.io import load_image

EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
COLUMNS = ["file", "age", "gender", "gender_prob", "p_female", "n_faces", "face_box", "ms"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("image_dir")
    ap.add_argument("out_csv")
    ap.add_argument("--crop", action="store_true", help="inputs are aligned face crops (our --aligned)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--model", default=None, help="a built-in model name (agegender info --list) or a card")
    a = ap.parse_args(argv)
    predictor = Predictor(model=a.model, threads=a.threads)
    files = sorted(f for f in os.listdir(a.image_dir) if f.lower().endswith(EXTS))
    failed = 0
    with open(a.out_csv, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for k, f in enumerate(files):
            try:
                img = load_image(os.path.join(a.image_dir, f))
            except AgeGenderError as exc:
                print(f"error: {exc}", file=sys.stderr)
                failed += 1
                w.writerow([f, "", "", "", "", 0, "", ""])
                continue
            if k == 0:
                predictor.predict(img, aligned=a.crop)  # warm-up once (lazy model loading)
            times = []
            pred = None
            for _ in range(max(1, a.repeat)):
                t0 = time.perf_counter()
                pred = predictor.predict(img, aligned=a.crop)
                times.append((time.perf_counter() - t0) * 1000)
            assert pred is not None
            ms = f"{statistics.median(times):.1f}"
            if not pred.faces:
                w.writerow([f, "", "", "", "", 0, "", ms])
                continue
            face = pred.faces[0]  # largest first
            box = "" if a.crop else " ".join(str(round(v)) for v in face.box)
            w.writerow([f, f"{face.age:.2f}", face.gender, f"{face.gender_probability:.4f}",
                        f"{face.p_female:.4f}", len(pred.faces), box, ms])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
