#!/usr/bin/env python3
"""Do two versions of the pipeline answer the same? A paired comparison on the same photos; prints Markdown.

Each version (a source tree, e.g. a worktree of an older commit: ``git worktree add /tmp/orig HEAD``) runs
``Predictor().iter_predict`` (the path of ``agegender predict`` and ``agegender evaluate``) over the same
photos in its own interpreter and writes every face it finds. Per source, the table gives the photos with a
face and the faces found by each, and for the main face (largest, most central: ``pick_face``, as
``agegender evaluate`` picks it) of the photos where both found one: how often the two boxes are the same
face (IoU > 0.5), the landmarks' mean distance (in eye distances), gender agreement, the mean |difference|
of p(female) and of the age; and against the labels, gender accuracy and age MAE (or the FairFace age-bin
hit rate) of each, with the paired difference and its standard error.

Sources: the validation parts of FairFace, UTKFace and All-Age-Faces (``--n`` photos spread evenly over
each), and the speed benchmark's ``web448`` photos (labelled by their UTKFace source).

usage:
  .venv/bin/python benchmarks/agreement.py --before /tmp/orig/src [--after src] [--n 500]
      [--sources fairface,utkface,aaf,web448] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

#: name -> (dataset spec for load_records, split file)
SOURCES = {
    "fairface": ("fairface", str(REPO.parent / "data" / "fairface" / "labels.csv"),
                 str(REPO / "configs" / "splits" / "fairface.csv")),
    "utkface": ("utkface", str(REPO.parent / "shared" / "data" / "utkface"),
                str(REPO / "configs" / "splits" / "utkface.csv")),
    "aaf": ("aaf", str(REPO.parent / "data" / "aaf"), str(REPO / "configs" / "splits" / "aaf.csv")),
}

_CHILD = r"""
import json, sys
from agegender import Predictor
paths = json.load(open(sys.argv[1]))
out = []
for p in Predictor().iter_predict(paths, chunk=32):
    out.append({"file": p.source, "w": p.width, "h": p.height, "error": p.error,
                "faces": [{"box": list(f.box), "lm": [list(x) for x in f.landmarks], "score": f.det_score,
                           "p_female": f.p_female, "age": f.age} for f in p.faces]})
json.dump(out, open(sys.argv[2], "w"))
"""


def run_version(src: str, paths: list[str], tmp: Path, tag: str) -> list[dict[str, Any]]:
    inp, out = tmp / f"{tag}-in.json", tmp / f"{tag}-out.json"
    inp.write_text(json.dumps(paths))
    env = dict(os.environ, PYTHONPATH=str(Path(src).resolve()))
    subprocess.run([sys.executable, "-c", _CHILD, str(inp), str(out)], env=env, check=True)
    return json.loads(out.read_text())


def labelled_photos(source: str, n: int) -> list[tuple[str, Any]]:
    """(path, record or None) of ``n`` photos spread evenly over a source's validation part."""
    from _common import every_kth

    if source == "web448":
        sources = {}
        for line in (REPO.parent / "speed-photos" / "web448-sources.csv").read_text().splitlines()[1:]:
            photo, src = line.split(",", 1)
            sources[str(REPO.parent / "speed-photos" / "web448" / photo)] = src
        from agegender.data.datasets import load_records

        utk = {r.path: r for r in load_records("utkface", SOURCES["utkface"][1])}
        items = [(p, utk.get(s)) for p, s in sorted(sources.items())]
        return every_kth(items, n)
    from agegender.data.datasets import load_records
    from agegender.eval.report import select_part

    name, root, split = SOURCES[source]
    return [(r.path, r) for r in every_kth(select_part(load_records(name, root), root, split, "val"), n)]


def resave(paths: list[str], folder: Path, factor: float = 1.0) -> list[str]:
    """Every photo re-saved upright as a JPEG of quality 95 into ``folder``, resized ``factor`` times
    (Pillow's bicubic)."""
    from PIL import Image, ImageOps

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k, p in enumerate(paths):
        target = folder / f"{k:05d}.jpg"
        with Image.open(p) as im:
            img = ImageOps.exif_transpose(im).convert("RGB")
            if factor != 1.0:
                img = img.resize((round(img.width * factor), round(img.height * factor)), Image.BICUBIC)
            img.save(target, quality=95)
        out.append(str(target))
    return out


def _unscaled(pred: dict[str, Any], k: float) -> dict[str, Any]:
    """A prediction on a resized copy, its boxes, landmarks and size ``k`` times (back to the photo's pixels)."""
    faces = [dict(f, box=[v * k for v in f["box"]], lm=[[x * k, y * k] for x, y in f["lm"]]) for f in pred["faces"]]
    return dict(pred, w=pred["w"] * k, h=pred["h"] * k, faces=faces)


def _iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def main_face(pred: dict[str, Any]) -> dict[str, Any] | None:
    import numpy as np

    from agegender.data.cache import pick_face
    from agegender.types import Detection

    if not pred["faces"]:
        return None
    dets = [Detection(tuple(f["box"]), f["score"], np.zeros((5, 2), np.float32)) for f in pred["faces"]]
    main = pick_face(dets, pred["w"], pred["h"])
    return pred["faces"][dets.index(main)] if main is not None else pred["faces"][0]


def _mean_se(values: list[float]) -> tuple[float, float]:
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    m = sum(values) / n
    var = sum((v - m) ** 2 for v in values) / max(1, n - 1)
    return m, math.sqrt(var / n)


def _right(rec: Any, face: dict[str, Any]) -> tuple[float | None, float | None]:
    """(gender right 0/1, age error or FairFace bin hit 0/1) of one face against its record."""
    if rec is None:
        return None, None
    g = None if rec.gender not in ("male", "female") else float((face["p_female"] >= 0.5) == (rec.gender == "female"))
    if rec.age is not None and rec.age_low == rec.age_high:
        return g, abs(face["age"] - rec.age)
    if rec.age_low is not None:
        return g, float(rec.age_low <= round(face["age"]) <= rec.age_high)
    return g, None


def compare(items: list[tuple[str, Any]], before: list[dict[str, Any]], after: list[dict[str, Any]]
            ) -> dict[str, Any]:
    import numpy as np

    res: dict[str, Any] = {"photos": len(items)}
    res["found_before"] = sum(1 for p in before if p["faces"])
    res["found_after"] = sum(1 for p in after if p["faces"])
    res["faces_before"] = sum(len(p["faces"]) for p in before)
    res["faces_after"] = sum(len(p["faces"]) for p in after)
    same, lm, g_agree, dpf, dage, g_diff, a_diff, g_b, g_a, a_b, a_a = ([] for _ in range(11))
    for (_path, rec), b, a in zip(items, before, after):
        fb, fa = main_face(b), main_face(a)
        if fb is None or fa is None:
            continue
        same.append(float(_iou(fb["box"], fa["box"]) > 0.5))
        if fb["lm"] and fa["lm"]:
            lb, la = np.array(fb["lm"]), np.array(fa["lm"])
            eye = max(float(np.linalg.norm(lb[0] - lb[1])), 1.0)
            lm.append(float(np.linalg.norm(lb - la, axis=1).mean()) / eye)
        g_agree.append(float((fb["p_female"] >= 0.5) == (fa["p_female"] >= 0.5)))
        dpf.append(abs(fb["p_female"] - fa["p_female"]))
        dage.append(abs(fb["age"] - fa["age"]))
        gb, ab = _right(rec, fb)
        ga, aa = _right(rec, fa)
        if gb is not None and ga is not None:
            g_b.append(gb)
            g_a.append(ga)
            g_diff.append(ga - gb)
        if ab is not None and aa is not None:
            a_b.append(ab)
            a_a.append(aa)
            a_diff.append(aa - ab)
    res["paired"] = len(same)
    res["same_face"] = sum(same) / max(1, len(same))
    res["landmark_eye_dist"] = (float(np.mean(lm)), float(np.percentile(lm, 95))) if lm else (math.nan, math.nan)
    res["gender_agree"] = sum(g_agree) / max(1, len(g_agree))
    res["p_female_abs_diff"] = float(np.mean(dpf)) if dpf else math.nan
    res["age_abs_diff"] = (float(np.mean(dage)), float(np.percentile(dage, 95))) if dage else (math.nan, math.nan)
    res["gender_acc"] = (_mean_se(g_b)[0], _mean_se(g_a)[0], *_mean_se(g_diff))
    res["age_metric"] = (_mean_se(a_b)[0], _mean_se(a_a)[0], *_mean_se(a_diff))
    return res


def table(results: dict[str, dict[str, Any]]) -> str:
    from _common import md_table

    rows = []
    for name, r in results.items():
        age_kind = "bin hit" if name.startswith("fairface") else "MAE"
        pct = 100 if name.startswith("fairface") else 1
        am = r["age_metric"]
        ga = r["gender_acc"]
        rows.append([
            name, str(r["photos"]), f"{r['found_before']} / {r['found_after']}",
            f"{r['faces_before']} / {r['faces_after']}", f"{100 * r['same_face']:.1f} %",
            f"{r['landmark_eye_dist'][0]:.3f} ({r['landmark_eye_dist'][1]:.3f})",
            f"{100 * r['gender_agree']:.1f} %", f"{r['p_female_abs_diff']:.4f}",
            f"{r['age_abs_diff'][0]:.2f} ({r['age_abs_diff'][1]:.2f})",
            f"{100 * ga[0]:.1f} / {100 * ga[1]:.1f} ({100 * ga[2]:+.2f} ± {100 * ga[3]:.2f})",
            f"{age_kind} {pct * am[0]:.2f} / {pct * am[1]:.2f} ({pct * am[2]:+.3f} ± {pct * am[3]:.3f})",
        ])
    return md_table(["source", "photos", "with a face: before / after", "faces: before / after",
                     "main face the same", "landmarks: mean (p95) distance, eye distances",
                     "gender the same", "mean abs. diff. p(female)", "mean (p95) abs. diff. age",
                     "gender right, %: before / after (diff. ± s.e.)", "age: before / after (diff. ± s.e.)"],
                    rows)


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(HERE))
    ap = argparse.ArgumentParser(description="paired comparison of two versions of the pipeline")
    ap.add_argument("--before", required=True, help="source tree (its src/ folder) of the version before")
    ap.add_argument("--after", default=str(REPO / "src"), help="source tree of the version after (this checkout)")
    ap.add_argument("--n", type=int, default=500, help="photos per source, spread evenly over its part")
    ap.add_argument("--sources", default="fairface,utkface,aaf,web448")
    ap.add_argument("--noise", action="store_true", help="also compare the version before with itself on the "
                    "photos re-saved as JPEG q95, and resized to 90 %%: how much changes no one would call changes "
                    "move the same figures")
    ap.add_argument("--out", help="also write every number here (JSON)")
    a = ap.parse_args(argv)
    print(f"# Before / after: `{a.before}` / `{a.after}`, {time.strftime('%Y-%m-%d %H:%M %Z')}\n")
    print("Reproduce: `.venv/bin/python benchmarks/agreement.py " + " ".join(argv or sys.argv[1:]) + "`\n")
    results = {}
    with tempfile.TemporaryDirectory(prefix="agegender-agree-") as tmp:
        for source in [s for s in a.sources.split(",") if s]:
            items = labelled_photos(source, a.n)
            paths = [p for p, _ in items]
            before = run_version(a.before, paths, Path(tmp), "before")
            after = run_version(a.after, paths, Path(tmp), "after")
            results[source] = compare(items, before, after)
            if a.noise:  # the yardsticks: the version before on the same photos re-saved, and resized by 10 %
                for label, factor in (("re-saved JPEG q95", 1.0), ("resized to 90 %", 0.9)):
                    copies = resave(paths, Path(tmp) / f"{source}-{factor}", factor)
                    noise = run_version(a.before, copies, Path(tmp), "noise")
                    if factor != 1.0:
                        noise = [_unscaled(p, 1 / factor) for p in noise]
                    results[f"{source}: before, {label} (noise)"] = compare(items, before, noise)
            print(f"- {source}: done ({len(paths)} photos)", file=sys.stderr)
    print(table(results))
    if a.out:
        Path(a.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
