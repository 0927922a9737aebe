"""Cross-domain table: each model on each source's held-out part and on stress subsets built from it.

Scored on the cached aligned crops (the same detector and aligner as inference) through ONNX Runtime, as
the shipped graph computes; the temperature of each card is applied. Sources:

* UTKFace test part (`configs/splits/utkface.csv`, 3,164 images);
* All-Age-Faces official val list (our `test` part of `configs/splits/aaf.csv`, 6,685 images), on the
  labels as given and without the images `agegender clean` flagged (`configs/clean/aaf_gender_noise.csv`).

    python experiments/benchmarks/cross_domain.py MODEL... [--names NAME...] [--part val] \
        [--out experiments/results/cross_domain.md]

``--part val`` scores each source's val part instead (UTKFace val, 1,583 images; AAF val, 664 images carved
from its official train list), for choosing.

MODEL: a shipped model name, a card (.json) or an ONNX file with its card. Needs the train extra (to read
the split and the cache as training does) and the data (UTKFace in ../shared/data, AAF in ../data/aaf).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # _common
from _common import REPO, cached_parts, framed_crops, md_table, score_probs  # noqa: E402

#: name -> (config whose single source is read, whether its labels have a noise list, short name for --part val)
SOURCES = {"UTKFace test": ("experiments/configs/xd-utk.yaml", False, "UTKFace"),
           "AAF val (official)": ("experiments/configs/xd-aaf.yaml", True, "AAF")}
NOISE = REPO / "configs" / "clean" / "aaf_gender_noise.csv"


def probabilities(model: str, crops: np.ndarray, threads: int, batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
    from agegender.postprocess import softmax
    from agegender.preprocess import to_input
    from agegender.runtime import ModelRuntime

    rt = ModelRuntime(model, threads=threads)
    gs, ages = [], []
    for i in range(0, len(crops), batch):
        raw = rt.run(to_input(crops[i : i + batch], rt.card.input))
        gs.append(softmax(raw.gender_logits, rt.card.gender_temperature))
        ages.append(softmax(raw.age_logits, rt.card.age_temperature))
    return np.concatenate(gs), np.concatenate(ages)


def landmarks_of(config: str, paths: list[str]) -> np.ndarray:
    from agegender.data.cache import load_cache
    from agegender.train.config import load_config

    cache = load_cache(load_config(config).all_sources()[0].cache)
    index = cache.index()
    return np.stack([cache.landmarks[index[p]] for p in paths])


def flagged_rows(paths: list[str], root: str) -> np.ndarray:
    if not NOISE.is_file():
        return np.zeros(len(paths), bool)
    with open(NOISE, newline="") as fh:
        flagged = {r["path"] for r in csv.DictReader(fh)}
    return np.array([os.path.relpath(p, root) in flagged for p in paths])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--names", nargs="*", help="a display name per model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stress-n", type=int, default=1000,
                    help="stress subsets are built from this many faces per source (fixed seed; 0: all)")
    ap.add_argument("--sources", default=",".join(SOURCES), help=f"comma-separated, of: {', '.join(SOURCES)}")
    ap.add_argument("--part", default="test", help="split part to score: test (default) or val, for choosing")
    ap.add_argument("--out", help="also write the tables here (markdown)")
    args = ap.parse_args()
    wanted = [s.strip() for s in args.sources.split(",") if s.strip()]
    if unknown := [s for s in wanted if s not in SOURCES]:
        ap.error(f"unknown source(s) {unknown}; choose from {list(SOURCES)}")
    names = args.names or args.models
    from agegender.card import ModelCard
    from agegender.eval.metrics import expected_calibration_error
    from agegender.eval.stress import stress_sets
    from agegender.runtime import resolve_card_path
    from agegender.train.config import load_config

    lines = ["# Cross-domain results", "",
             "Cached aligned crops, ONNX Runtime, each card's temperature; `gender` = accuracy, `MAE` in years; "
             f"command: `python experiments/benchmarks/cross_domain.py {' '.join(sys.argv[1:])}`", ""]
    for source in wanted:
        config, noisy, short = SOURCES[source]
        heading = source if args.part == "test" else f"{short}, {args.part} part"
        data = cached_parts(config, (args.part,), args.threads)[args.part]
        gender, age = data.gender.numpy(), data.age.numpy()
        lms = landmarks_of(config, data.paths)
        sample = np.arange(len(data))
        if args.stress_n and args.stress_n < len(data):
            sample = np.sort(np.random.default_rng(0).choice(len(data), args.stress_n, replace=False))
        root = load_config(config).all_sources()[0].root
        clean = ~flagged_rows(data.paths, root) if noisy else None
        rows, header = [], []
        for model, name in zip(args.models, names):
            # a model with several views reads every framing of each face (its card's alignment.views)
            card = ModelCard.load(resolve_card_path(model))
            framings = card.alignment.framings
            crops = framed_crops(config, args.part, data, framings, card.training.get("configs") or [])
            sets = {k: (sample[idx], x) for k, (idx, x) in
                    stress_sets(crops[sample], lms[sample], tuple(m for m, _ in framings)).items()}
            sets["all"] = (np.arange(len(crops)), crops)
            header = ["model"] + [f"{k} (n={len(v[0])})" for k, v in sets.items()]
            if clean is not None:
                header.insert(2, f"all, cleaned labels (n={int(clean.sum())})")
            row = [name]
            for k, (idx, x) in sets.items():
                pg, pa = probabilities(model, x, args.threads)
                m = score_probs(pg, pa, gender[idx], age[idx])
                row.append(f"{100 * m['gender_accuracy']:.1f} % / {m['age_mae']:.2f}")
                if k == "all":
                    bias = float((pa @ np.arange(pa.shape[1]) - age[idx]).mean())
                    known = gender[idx] >= 0
                    ece = expected_calibration_error(pg[known].max(1), pg[known].argmax(1) == gender[idx][known])
                    row[-1] += f" (bias {bias:+.1f}, ECE {ece:.3f})"
                    if clean is not None:
                        mc = score_probs(pg[clean], pa[clean], gender[clean], age[clean])
                        row.append(f"{100 * mc['gender_accuracy']:.1f} % / {mc['age_mae']:.2f}")
            rows.append(row)
            print(f"{heading}: {row}", file=sys.stderr)
        lines += [f"## {heading}", "", "gender accuracy / age MAE (bias: mean predicted minus labelled age; ECE: "
                  "expected calibration error of the gender probability, 10 bins)", "",
                  md_table(header, rows), ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
