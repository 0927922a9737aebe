"""Stable answers: does the same photo, saved again, get the same gender? And do unreadable faces get a
low confidence?

For each image of a split part (full pipeline: detection, alignment, model) the main face of the original
is compared with the main face of each re-saved copy: JPEG at quality 60, 80 and 95, WebP 80, greyscale,
a CMYK JPEG, and the photo rescaled by 0.8 and 1.2. The flip rate of a variant is the share of images
whose gender changes, among those where both copies have a face. A second table gives, for copies no
one can judge (upside down, on its side, blurred away), the mean confidence max(p, 1 - p) and the share
answered with 90 % or more, and how often the gender is the one the upright photo got (the similarity
alignment turns a face upright when the detector's landmarks are right, and such a face is readable again).

    python benchmarks/stability.py --data fairface:../data/fairface/labels.csv \
        --split configs/splits/fairface.csv --part val --limit 1000 [--model runs/x/model.json]
    python benchmarks/stability.py --sample      # the README's sample photo only, every variant

Prints Markdown tables; ``--json`` also writes the figures.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from agegender import Predictor


def _save(fmt: str, **kw: object) -> Callable[[Image.Image], bytes]:
    def run(im: Image.Image) -> bytes:
        buf = io.BytesIO()
        (im.convert("CMYK") if fmt == "CMYK" else im).save(buf, "JPEG" if fmt == "CMYK" else fmt, **kw)
        return buf.getvalue()
    return run


def _then_png(fn: Callable[[Image.Image], Image.Image]) -> Callable[[Image.Image], bytes]:
    return lambda im: _save("PNG")(fn(im))


def _rescale(f: float) -> Callable[[Image.Image], Image.Image]:
    return lambda im: im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))), Image.LANCZOS)


#: re-saved copies a user may bring: the answer must not change
RESAVED: dict[str, Callable[[Image.Image], bytes]] = {
    "jpeg60": _save("JPEG", quality=60), "jpeg80": _save("JPEG", quality=80),
    "jpeg95": _save("JPEG", quality=95), "webp80": _save("WEBP", quality=80),
    "grey": _then_png(lambda im: im.convert("L").convert("RGB")), "cmyk": _save("CMYK", quality=90),
    "scale0.8": _then_png(_rescale(0.8)), "scale1.2": _then_png(_rescale(1.2)),
}
#: copies no one can judge: the answer should come with low confidence
UNREADABLE: dict[str, Callable[[Image.Image], bytes]] = {
    "upside_down": _then_png(lambda im: im.rotate(180)),
    "on_its_side": _then_png(lambda im: im.transpose(Image.Transpose.ROTATE_90)),
    "blurred_away": _then_png(lambda im: im.filter(ImageFilter.GaussianBlur(max(im.size) / 20))),
}


def _main_face(pred) -> tuple[str, float] | None:  # noqa: ANN001 - agegender.Prediction
    if pred.error or not pred.faces:
        return None
    f = pred.faces[0]
    return f.gender, f.p_female


def measure(predictor: Predictor, paths: list[str]) -> dict[str, dict[str, float]]:
    """Flip rates (re-saved copies) and confidences (unreadable copies) over ``paths``."""
    originals = [_main_face(p) for p in predictor.predict_many(paths)]
    photos = []
    for path in paths:  # decoded once, re-saved eleven ways
        with Image.open(path) as im:
            photos.append(im.convert("RGB"))
    out: dict[str, dict[str, float]] = {}
    for name, fn in {**RESAVED, **UNREADABLE}.items():
        blobs = [fn(im) for im in photos]
        faces = [_main_face(p) for p in predictor.predict_many(blobs)]
        if name in RESAVED:
            both = [(a, b) for a, b in zip(originals, faces) if a and b]
            flips = sum(a[0] != b[0] for a, b in both)
            out[name] = {"n": len(both), "flips": flips, "flip_rate": flips / max(1, len(both)),
                         "lost": sum(1 for a, b in zip(originals, faces) if a and not b)}
        else:
            conf = np.array([max(f[1], 1 - f[1]) for f in faces if f])
            both = [(a, b) for a, b in zip(originals, faces) if a and b]
            out[name] = {"n": len(paths), "faces_found": int(len(conf)),
                         "same_gender": sum(a[0] == b[0] for a, b in both) / max(1, len(both)),
                         "mean_confidence": float(conf.mean()) if len(conf) else float("nan"),
                         "confident_share": float((conf >= 0.9).mean()) if len(conf) else float("nan")}
    return out


def _part_paths(data: str, split: str, part: str, limit: int, seed: int) -> list[str]:
    import os

    from agegender.data.datasets import load_records
    from agegender.data.splits import read_split

    name, _, root = data.partition(":")
    records = load_records(name, root)
    base = root if os.path.isdir(root) else os.path.dirname(os.path.abspath(root))
    wanted = {r.path for r in read_split(split) if r.part == part}
    paths = sorted(r.path for r in records if os.path.relpath(r.path, base) in wanted)
    if limit and len(paths) > limit:
        paths = sorted(np.random.default_rng(seed).choice(paths, limit, replace=False).tolist())
    return paths


def _sample_path() -> str:
    import skimage.data

    return str(Path(skimage.data.__file__).parent / "astronaut.png")


def markdown(res: dict[str, dict[str, float]], title: str) -> str:
    lines = [f"### {title}", "", "| re-saved as | faces compared | gender flips | flip rate | face lost |",
             "|---|---|---|---|---|"]
    for name in RESAVED:
        r = res[name]
        lines.append(f"| {name} | {r['n']} | {r['flips']} | {100 * r['flip_rate']:.2f} % | {r['lost']} |")
    lines += ["", "| unreadable copy | faces found | mean confidence | answered with >= 90 % | gender as upright |",
              "|---|---|---|---|---|"]
    for name in UNREADABLE:
        r = res[name]
        lines.append(f"| {name} | {r['faces_found']} of {r['n']} | {100 * r['mean_confidence']:.1f} % | "
                     f"{100 * r['confident_share']:.1f} % | {100 * r['same_gender']:.1f} % |")
    return "\n".join(lines) + "\n"


def sample_answers(predictor: Predictor) -> str:
    """The README's sample as PNG and as every copy: gender, confidence and age of its face."""
    path = _sample_path()
    with Image.open(path) as im:
        im = im.convert("RGB")
        copies = {k: fn(im) for k, fn in {**RESAVED, **UNREADABLE}.items()}
    blobs = {"png (original)": Path(path).read_bytes(), **copies}
    preds = predictor.predict_many(list(blobs.values()))
    lines = ["### README sample (astronaut.png)", "", "| copy | answer |", "|---|---|"]
    for name, p in zip(blobs, preds):
        lines.append(f"| {name} | {p.faces[0] if p.faces else 'no face'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="model card or built-in name (default: the shipped model)")
    ap.add_argument("--data", help="DATASET:PATH, e.g. fairface:../data/fairface/labels.csv")
    ap.add_argument("--split", help="split CSV (configs/splits/...)")
    ap.add_argument("--part", default="val")
    ap.add_argument("--limit", type=int, default=1000, help="images drawn from the part (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample", action="store_true", help="the README's sample photo only")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    predictor = Predictor(args.model, threads=args.threads)
    if args.sample or not args.data:
        print(sample_answers(predictor))
        return 0
    if not args.split:
        ap.error("--data needs --split")
    paths = _part_paths(args.data, args.split, args.part, args.limit, args.seed)
    res = measure(predictor, paths)
    print(markdown(res, f"{args.data.split(':')[0]} {args.part}, {len(paths)} images, model {args.model or 'default'}"))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
