"""Training runs, or averages of them, on the stress subsets of each source's held-out part (PyTorch, one
pass, no calibration): for clean ablations of a training lever before anything is exported. Each cell:
gender accuracy / age MAE (bias: mean predicted minus labelled age). Choose on ``--part val``; the test
part is there to report.

    python experiments/benchmarks/ablation_stress.py RUN [RUN+RUN ...] [--part val] [--stress-n 600] \
        [--subsets "all,scanned old print"]

A run is a run folder (best checkpoint) or a network of an exported ensemble (``model.onnx#K``);
``A+B`` averages the probabilities of several, each on its own framing of the same faces.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # _common
from _common import cached_parts, framed_crops, md_table, score_probs  # noqa: E402
from combine_sources import member_config, member_probs  # noqa: E402
from cross_domain import SOURCES, landmarks_of  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", metavar="RUN[+RUN...]")
    ap.add_argument("--part", default="val", choices=("val", "test"))
    ap.add_argument("--stress-n", type=int, default=600)
    ap.add_argument("--subsets", default="", help="comma-separated subset names to score (default: all)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    from agegender.eval.stress import stress_sets
    from agegender.train.views import framing_of

    torch.set_num_threads(args.threads)
    wanted = [s.strip() for s in args.subsets.split(",") if s.strip()]
    specs = sorted({m for r in args.runs for m in r.split("+")})
    configs = {m: member_config(m) for m in specs}
    for source, (config, _, _) in SOURCES.items():
        data = cached_parts(config, (args.part,), args.threads)[args.part]
        rng = np.random.default_rng(0)
        sample = np.sort(rng.choice(len(data), min(args.stress_n, len(data)), replace=False))
        lms = landmarks_of(config, [data.paths[i] for i in sample])
        gender, age = data.gender.numpy()[sample], data.age.numpy()[sample]
        probs: dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        for m in specs:  # each network once, on its own framing of the same faces
            framing = framing_of(configs[m])
            crops = framed_crops(config, args.part, data, [framing], [configs[m]])[sample]
            sets = {k: v for k, v in stress_sets(crops, lms, (framing[0],)).items() if not wanted or k in wanted}
            # one pass of the network over every subset at once, split back per subset
            pg, pa = member_probs(m, torch.from_numpy(np.concatenate([x for _, x in sets.values()])), mirror=False)
            ends = np.cumsum([len(idx) for idx, _ in sets.values()])
            probs[m] = {k: (idx, g, a) for (k, (idx, _)), g, a in
                        zip(sets.items(), np.split(pg, ends[:-1]), np.split(pa, ends[:-1]))}
        rows = []
        for run in args.runs:
            members = run.split("+")
            row = [run]
            for k, (idx, _, _) in probs[members[0]].items():
                pg = np.mean([probs[m][k][1] for m in members], axis=0)
                pa = np.mean([probs[m][k][2] for m in members], axis=0)
                s = score_probs(pg, pa, gender[idx], age[idx])
                bias = float((pa @ np.arange(pa.shape[1]) - age[idx]).mean())
                row.append(f"{100 * s['gender_accuracy']:.1f} % / {s['age_mae']:.2f} ({bias:+.1f})")
            rows.append(row)
        names = list(probs[specs[0]])
        sizes = {k: len(probs[specs[0]][k][0]) for k in names}
        print(f"## {source.split()[0]}, {args.part} part, {len(sample)} faces\n")
        print(md_table(["run"] + [f"{k} (n={sizes[k]})" for k in names], rows) + "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
