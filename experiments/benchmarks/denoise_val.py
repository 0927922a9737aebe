"""How a model reads grainy faces, with and without smoothing before the network (the noise ceiling).

On the val parts' cached crops (UTKFace val, AAF val), each face is scored as it is and under added
grain (Gaussian, the same on the three channels), the stress subsets' over-sharpening and scanned print;
each condition through three front ends:

* ``none``: the crop as it is (the card's ceiling switched off);
* ``gaussian``: ``agegender.denoise.reduce_noise`` at the ceiling (the least Gaussian blur that brings the
  crop under it; what ships);
* ``bilateral``: an edge-preserving bilateral filter (range sigma 3 x the crop's noise level, spatial sigma
  1.5 px) on the crops above the ceiling: the alternative that was tried.

    python experiments/benchmarks/denoise_val.py [--model default] [--ceiling 2.224]

Prints gender accuracy / age MAE (bias) per source and the share of crops touched.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # _common
from _common import cached_parts, md_table  # noqa: E402


def bilateral(crop: np.ndarray, range_sigma: float, space_sigma: float = 1.5, radius: int = 3) -> np.ndarray:
    x = crop.astype(np.float32)
    luma = x @ np.array([0.299, 0.587, 0.114], np.float32)
    px = np.pad(x, ((radius, radius), (radius, radius), (0, 0)), mode="edge")
    pl = np.pad(luma, radius, mode="edge")
    h, w = luma.shape
    num, den = np.zeros_like(x), np.zeros_like(luma)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            near = pl[radius + dy : radius + dy + h, radius + dx : radius + dx + w]
            wt = np.exp(-(dy * dy + dx * dx) / (2 * space_sigma**2) - (near - luma) ** 2 / (2 * range_sigma**2))
            num += wt[..., None] * px[radius + dy : radius + dy + h, radius + dx : radius + dx + w]
            den += wt
    return np.clip(num / den[..., None], 0, 255).round().astype(np.uint8)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--ceiling", type=float, help="default: the card's own (2.224 when it has none)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    from agegender.denoise import noise_level, reduce_noise
    from agegender.eval.stress import TRANSFORMS
    from agegender.postprocess import softmax
    from agegender.preprocess import to_input
    from agegender.runtime import ModelRuntime

    rt = ModelRuntime(args.model, threads=args.threads)
    ceiling = args.ceiling or rt.card.input.noise_ceiling or 2.224
    plain = dataclasses.replace(rt.card.input, noise_ceiling=None)
    data = cached_parts("configs/xd-long.yaml", ("val",), args.threads)["val"]
    crops, age, gender, src = data.crops.numpy(), data.age.numpy(), data.gender.numpy(), data.source.numpy()
    rng = np.random.default_rng(1)

    def grain(sd: float) -> np.ndarray:
        return np.clip(crops + rng.normal(0, sd, crops.shape[:3])[..., None], 0, 255).round().astype(np.uint8)

    conditions = {"clean": crops, "grain 4": grain(4), "grain 8": grain(8), "grain 12": grain(12),
                  "over-sharpened": TRANSFORMS["over-sharpened"](crops, 1.0),
                  "scanned old print": TRANSFORMS["scanned old print"](crops, 1.0)}

    def bilateral_all(c: np.ndarray) -> tuple[np.ndarray, float]:
        out, n = c.copy(), noise_level(c)
        for i in np.flatnonzero(n > ceiling):
            out[i] = bilateral(c[i], 3.0 * n[i])
        return out, float(np.mean(n > ceiling))

    def gaussian_all(c: np.ndarray) -> tuple[np.ndarray, float]:
        out, sig = reduce_noise(c, ceiling)
        return out, float(np.mean(sig[:, 0] > 0))

    fronts = {"none": lambda c: (c, 0.0), "gaussian": gaussian_all, "bilateral": bilateral_all}
    rows = []
    for cname, c in conditions.items():
        for fname, front in fronts.items():
            x, touched = front(c)
            g, a = [], []
            for i in range(0, len(x), 64):
                raw = rt.run(to_input(x[i : i + 64], plain))
                g.append(softmax(raw.gender_logits)[:, 1])
                a.append(softmax(raw.age_logits) @ np.arange(raw.age_logits.shape[1]))
            pf, ea = np.concatenate(g), np.concatenate(a)
            row = [cname, fname, f"{100 * touched:.0f} %"]
            for k in range(len(data.source_names)):
                m = src == k
                row.append(f"{100 * np.mean((pf[m] > 0.5) == gender[m]):.1f} % / {np.abs(ea[m] - age[m]).mean():.3f}"
                           f" ({np.mean(ea[m] - age[m]):+.2f})")
            rows.append(row)
            print(" | ".join(row), file=sys.stderr, flush=True)
    print(f"Model {args.model}, ceiling {ceiling}; val parts, cached crops; gender / age MAE (bias)\n")
    print(md_table(["condition", "front end", "crops touched"] + [f"{s} val" for s in data.source_names], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
