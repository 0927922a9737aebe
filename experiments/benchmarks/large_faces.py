"""Large faces: the same photos at a higher resolution, aligned with and without block averaging.

The training crops come from small photos (UTKFace's 200 px chips, AAF's 300 px photos): the aligner
shrinks a face less than two times. A phone photo, a studio portrait or a 600 dpi scan shrinks it 4-10
times; bilinear sampling alone then keeps the photo's finest detail (grain, sensor noise, scan texture) at
full strength in the crop. This script rebuilds that case from labelled photos and scores both aligners
through the full pipeline (detector on the large photo, alignment, the model's ONNX graph):

* ``original``: the photo as it is;
* ``xF``: enlarged F times (Lanczos), a smooth large photo;
* ``xF + grain``: plus grain at the large photo's own pixels (Gaussian, sigma as a fraction of 255), as
  film grain or sensor noise is;
* ``xF + print``: plus the scanned-print look at the large photo's own pixels (sepia, faded contrast,
  unsharp mask, grain), as a print scanned at high resolution.

    python experiments/benchmarks/large_faces.py [--model default] [--source aaf] [--part val] [-n 300] [--scale 4]

Prints one table per aligner: gender accuracy, age MAE and age bias (mean predicted minus labelled) per
condition. The photos and labels come from the split's part (val by default: this is for choosing).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # _common
from _common import REPO, UTK_ROOT, UTK_SPLIT, md_table  # noqa: E402

SOURCES = {
    "utkface": (UTK_ROOT, UTK_SPLIT),
    "aaf": (str(REPO.parent / "data" / "aaf"), str(REPO / "configs" / "splits" / "aaf.csv")),
}


def enlarge(im: Image.Image, scale: float) -> Image.Image:
    return im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)


def grain(im: Image.Image, sigma: float, rng: np.random.Generator) -> Image.Image:
    a = np.asarray(im, np.float32) / 255.0
    a = a + rng.normal(0.0, sigma, a.shape[:2])[..., None]
    return Image.fromarray((np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8))


def old_print(im: Image.Image, scale: float) -> Image.Image:
    """The stress subset's scanned print (``agegender.eval.stress``) applied at the large photo's own pixels."""
    from agegender.eval.stress import TRANSFORMS

    return Image.fromarray(TRANSFORMS["scanned old print"](np.asarray(im)[None], scale)[0])


def conditions(scale: float, sigma: float) -> dict[str, object]:
    s = f"x{scale:g}"
    return {
        "original": lambda im, rng: im,
        s: lambda im, rng: enlarge(im, scale),
        f"{s} + grain {sigma:g}": lambda im, rng: grain(enlarge(im, scale), sigma, rng),
        f"{s} + print": lambda im, rng: old_print(enlarge(im, scale), scale),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--source", choices=sorted(SOURCES), default="aaf")
    ap.add_argument("--part", default="val")
    ap.add_argument("-n", type=int, default=300, help="photos (the first N of the part, in a seeded order)")
    ap.add_argument("--scale", type=float, default=4.0)
    ap.add_argument("--sigma", type=float, default=0.03, help="grain at the large photo's pixels")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    from tqdm import tqdm

    from agegender import Predictor
    from agegender.align import align_views
    from agegender.data.datasets import load_records
    from agegender.eval.report import select_part

    root, split = SOURCES[args.source]
    records = [r for r in select_part(load_records(args.source, root), root, split, args.part)
               if r.age is not None and r.gender in ("male", "female")]
    order = np.random.default_rng(0).permutation(len(records))[: args.n]
    records = [records[i] for i in sorted(order)]
    p = Predictor(model=args.model, threads=args.threads)
    card = p.card
    conds = conditions(args.scale, args.sigma)
    # results[(antialias, condition)] = list of (p_female, age, label_female, label_age)
    results: dict[tuple[bool, str], list[tuple[float, float, int, float]]] = {}
    missed = dict.fromkeys(conds, 0)
    for i, rec in enumerate(tqdm(records, desc="photos", mininterval=10)):
        base = Image.open(rec.path).convert("RGB")
        for name, make in conds.items():
            img = np.asarray(make(base, np.random.default_rng(i)))
            faces = p.detect(img)
            if not faces:
                missed[name] += 1
                continue
            face = max(faces, key=lambda f: f.score)
            for aa in (False, True):
                crop = align_views(img, face.landmarks, card.input.size, card.alignment.framings,
                                   card.alignment.template, antialias=aa)
                res, _ = p.predict_crops(crop[None])
                results.setdefault((aa, name), []).append(
                    (res[0].p_female, res[0].age, int(rec.gender == "female"), float(rec.age)))
    print(f"{args.model} on {args.source} {args.part}, {len(records)} photos, enlarged x{args.scale:g} "
          f"(faces not found: {missed})\n")
    for aa in (False, True):
        rows = []
        for name in conds:
            r = np.array(results.get((aa, name), []), dtype=np.float64).reshape(-1, 4)
            if not len(r):
                continue
            right = ((r[:, 0] >= 0.5) == (r[:, 2] == 1)).mean()
            err = r[:, 1] - r[:, 3]
            rows.append([name, str(len(r)), f"{100 * right:.1f} %", f"{np.abs(err).mean():.2f}", f"{err.mean():+.2f}"])
        print(f"### aligner {'with' if aa else 'without'} block averaging\n")
        print(md_table(["condition", "faces", "gender", "age MAE", "age bias"], rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
