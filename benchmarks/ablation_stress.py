"""Training runs (PyTorch checkpoints, one pass, no calibration) on the stress subsets of each source's
held-out part: for clean ablations of a training lever before anything is exported.

    python benchmarks/ablation_stress.py RUN_DIR... [--stress-n 600]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cached_parts, framed_crops, md_table, score_probs  # noqa: E402
from cross_domain import SOURCES, landmarks_of  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--stress-n", type=int, default=600)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    from agegender.eval.stress import stress_sets
    from agegender.train.engine import predict_logits
    from agegender.train.export import load_run_model

    torch.set_num_threads(args.threads)
    loaded = [load_run_model(r) for r in args.runs]
    for source, (config, _) in SOURCES.items():
        data = cached_parts(config, ("test",), args.threads)["test"]
        rng = np.random.default_rng(0)
        sample = np.sort(rng.choice(len(data), min(args.stress_n, len(data)), replace=False))
        lms = landmarks_of(config, [data.paths[i] for i in sample])
        gender, age = data.gender.numpy()[sample], data.age.numpy()[sample]
        rows, sets = [], {}
        for run, (model, ck) in zip(args.runs, loaded):
            # a run trained on a wider framing is scored on its own framing of the same faces
            framing = (float(ck["config"].get("margin", 0.0)), str(ck["config"].get("border", "edge")))
            crops = framed_crops(config, "test", data, [framing], [ck["config"]])[sample]
            sets = stress_sets(crops, lms, (framing[0],))
            row = [Path(run).name]
            for idx, x in sets.values():
                g, a = predict_logits(model, torch.from_numpy(x))
                pg = np.exp(g - g.max(1, keepdims=True))
                pa = np.exp(a - a.max(1, keepdims=True))
                m = score_probs(pg / pg.sum(1, keepdims=True), pa / pa.sum(1, keepdims=True), gender[idx], age[idx])
                row.append(f"{100 * m['gender_accuracy']:.1f} % / {m['age_mae']:.2f}")
            rows.append(row)
        print(f"## {source}, {len(sample)} faces\n")
        print(md_table(["run"] + [f"{k} (n={len(v[0])})" for k, v in sets.items()], rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
