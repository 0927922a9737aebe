#!/usr/bin/env python3
"""Which networks to average when training on several sources? Every combination of networks, with and
without the mirror pass, within a budget of passes per face, scored on each source's validation part (and
test part) from the cached crops; sorted by the mean of the per-source objectives (age MAE + 20 x gender
error), the selection rule of multi-source training (issue 12).

Members are training runs (``LABEL=runs/NAME``, best checkpoint) or networks inside an exported ONNX
ensemble (``LABEL=src/agegender/assets/model.onnx#0``), run in PyTorch at temperature 1 (calibration does
not change gender decisions). A member trained on another framing (a wide view: margin, border) is scored
on that framing's crops of the same faces (the crop cache its run names for each source), as an exported
model with views would feed it; members must share the config's input size.
Probabilities are kept in ``--cache`` so that later calls (more members, the test part) reuse them.
Choose on the validation columns; the test columns are there to report.

usage:
  .venv/bin/python experiments/benchmarks/combine_sources.py V0=src/agegender/assets/model.onnx#0 L=runs/xd-long \
      [--config configs/xd-long.yaml] [--parts val,test] [--max-passes 4] [--top 15] [--out combos.json]
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


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def member_config(spec: str) -> dict:
    """The training config of a run folder, or the one the card records for network K of an export."""
    if "#" in spec or spec.endswith(".onnx"):
        from agegender.card import ModelCard

        path, _, k = spec.partition("#")
        return ModelCard.load(Path(path).with_suffix(".json")).training["configs"][int(k or 0)]
    import torch

    return torch.load(Path(spec) / "best.pt", map_location="cpu", weights_only=False)["config"]


def member_probs(spec: str, crops, mirror: bool) -> tuple[np.ndarray, np.ndarray]:
    """Gender and age probabilities of one network (a run folder, or ``model.onnx#K``) on uint8 crops."""
    from agegender.models import create_model
    from agegender.train.engine import predict_logits
    from agegender.train.export import load_run_model
    from agegender.train.trainer import init_weights

    if "#" in spec or spec.endswith(".onnx"):
        model = create_model("attn_mbv2", pretrained=False)
        init_weights(model, spec)
        model.eval()
    else:
        model = load_run_model(spec)[0]
    g, a = predict_logits(model, crops, flip=mirror)
    return _softmax(g), _softmax(a)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("members", nargs="+", metavar="LABEL=RUN_OR_ONNX#K")
    ap.add_argument("--config", default=str(REPO / "configs" / "xd-long.yaml"),
                    help="multi-source training config whose sources (splits, crop caches) are used")
    ap.add_argument("--parts", default="val,test")
    ap.add_argument("--max-passes", type=int, default=4)
    ap.add_argument("--top", type=int, default=15, help="rows to print (all go to --out)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=str(REPO / "cache" / "combine_sources"))
    ap.add_argument("--out", help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    members = dict(m.split("=", 1) for m in args.members)
    parts = args.parts.split(",")
    import torch

    torch.set_num_threads(args.threads)
    arrays = cached_parts(args.config, tuple(parts), args.threads)
    from agegender.train.config import load_config
    from agegender.train.views import framed_arrays, framing_of

    base = load_config(args.config, [f"threads={args.threads}"])
    framed = {(base.margin, base.border): arrays}  # the crops of each framing, row for row
    configs: dict[str, dict] = {}

    def crops_of(label: str, part: str):
        if label not in configs:
            configs[label] = member_config(members[label])
        f = framing_of(configs[label])
        if f not in framed:
            print(f"{label} reads its own framing: margin {f[0]}, border {f[1]}", file=sys.stderr)
            framed[f] = framed_arrays(base, configs[label], tuple(parts), like=arrays)
        return framed[f][part].crops

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    probs: dict[tuple[str, str, bool], tuple[np.ndarray, np.ndarray]] = {}
    for part in parts:
        for label, spec in members.items():
            for mirror in (False, True):
                key = f"{spec.replace('/', '_').replace('#', '-')}_{Path(args.config).stem}_{part}_{int(mirror)}.npz"
                f = cache / key
                if f.exists():
                    with np.load(f) as z:
                        probs[(part, label, mirror)] = z["g"], z["a"]
                    continue
                pg, pa = member_probs(spec, crops_of(label, part), mirror)
                np.savez(f, g=pg, a=pa)
                probs[(part, label, mirror)] = pg, pa
            print(f"scored {label} on {part}", file=sys.stderr)

    def score(part: str, combo: tuple[str, ...], mirror: bool) -> dict[str, dict[str, float]]:
        views = [probs[(part, m, f)] for m in combo for f in ((False, True) if mirror else (False,))]
        pg, pa = np.mean([v[0] for v in views], 0), np.mean([v[1] for v in views], 0)
        data = arrays[part]
        out = {}
        for k, name in enumerate(data.source_names):
            sel = data.source.numpy() == k
            out[name] = score_probs(pg[sel], pa[sel], data.gender.numpy()[sel], data.age.numpy()[sel])
        out["mean"] = {"objective": float(np.mean([out[n]["objective"] for n in data.source_names]))}
        return out

    rows = []
    for k in range(1, len(members) + 1):
        for combo in itertools.combinations(members, k):
            for mirror in (False, True):
                passes = len(combo) * (2 if mirror else 1)
                if passes <= args.max_passes:
                    rows.append({"members": list(combo), "mirror": mirror, "passes": passes,
                                 **{p: score(p, combo, mirror) for p in parts}})
    rows.sort(key=lambda r: r[parts[0]]["mean"]["objective"])
    names = arrays[parts[0]].source_names
    header = ["members", "passes"]
    for p in parts:
        header += [f"{p} {n} gender / MAE" for n in names] + [f"{p} mean objective"]
    table = []
    for r in rows[: args.top]:
        line = [" + ".join(r["members"]) + (" + mirror" if r["mirror"] else ""), str(r["passes"])]
        for p in parts:
            line += [f"{100 * r[p][n]['gender_accuracy']:.1f} % / {r[p][n]['age_mae']:.2f}" for n in names]
            line.append(f"{r[p]['mean']['objective']:.3f}")
        table.append(line)
    print(md_table(header, table))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
