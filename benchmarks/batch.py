#!/usr/bin/env python3
"""Throughput of ``agegender batch`` (local and Ray engines) and where the time goes; prints Markdown tables.

(a) stages, one process, one thread, images one by one: decode (``load_image``), detect, align, model
    (faces in batches of 32, per face), over ``--stage-n`` UTKFace images;
    the same for a phone-sized photo: scikit-image's public-domain astronaut scaled to ``--photo-size`` and
    saved as a JPEG (one face), ``--photo-n`` times;
(b) each engine at each worker count over ``--n`` UTKFace images (every k-th file, so all ages), a fresh
    output folder each, from the parts' manifests (each records when its worker started and finished it):
    start-up (call -> first worker starts computing: process spawn or Ray start, model loads), processing
    window (first start -> last finish) and its images/s, tail (last finish -> summary: last commits, shut
    down), worker-busy ms per image, end-to-end images/s, and images per CPU-second (the user+sys CPU of
    every process the job starts, sampled from /proc: the throughput of one fully used core). The Ray
    overhead is the Ray figures against the local engine's at the same worker count;
(c) the driver's cost of committing one part of ``--batch-size`` images as Parquet (the Ray engine's driver
    commits every part: this bounds a cluster's throughput).

usage:
  nice -n 10 .venv/bin/python benchmarks/batch.py [--n 1000] [--workers 1,2] [--engines local,ray]
      [--batch-size 64] [--repeat 2] [--stage-n 300] [--photo-size 4032x3024] [--photo-n 20] [--out batch.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import UTK_ROOT, environment, every_kth, md_table

from agegender import Predictor
from agegender.io import load_image


def utkface_images(n: int) -> list[str]:
    root = Path(UTK_ROOT)
    if not root.is_dir():
        sys.exit(f"UTKFace not found at {root}")
    return every_kth(sorted(str(p) for p in root.iterdir() if p.is_file()), n)


def bench_stages(paths: list[str], batch: int = 32) -> dict[str, Any]:
    """Seconds per image in each stage, one thread, sequentially (no overlap)."""
    p = Predictor(threads=1, workers=1)
    p.card, p.detector  # noqa: B018 - load both before timing
    t = {"decode": 0.0, "detect": 0.0, "align": 0.0, "model": 0.0}
    crops: list[np.ndarray] = []
    for path in paths:
        t0 = time.perf_counter()
        img = load_image(path)
        t1 = time.perf_counter()
        dets = p.detect(img)
        t2 = time.perf_counter()
        crops += [p.align(img, d) for d in dets]
        t3 = time.perf_counter()
        t["decode"] += t1 - t0
        t["detect"] += t2 - t1
        t["align"] += t3 - t2
    p.predict_crops(np.stack(crops[:batch]))  # warm-up
    t0 = time.perf_counter()
    for i in range(0, len(crops), batch):
        p.predict_crops(np.stack(crops[i : i + batch]))
    t["model"] = time.perf_counter() - t0
    n = len(paths)
    return {"images": n, "faces": len(crops), "ms_per_image": {k: 1000 * v / n for k, v in t.items()}}


def phone_photo(size: str, folder: Path) -> str:
    """The astronaut (512x512, public domain) scaled to fill ``size`` (WxH) on grey, saved as a JPEG."""
    from PIL import Image
    from skimage import data

    w, h = (int(v) for v in size.split("x"))
    canvas = Image.new("RGB", (w, h), (128, 128, 128))
    face = Image.fromarray(data.astronaut()).resize((h, h), Image.BICUBIC)
    canvas.paste(face, ((w - h) // 2, 0))
    path = folder / f"astronaut_{w}x{h}.jpg"
    canvas.save(path, quality=90)
    return str(path)


def stage_table(stages: dict[str, Any]) -> str:
    ms = stages["ms_per_image"]
    total = sum(ms.values())
    return md_table(["stage", "ms per image", "share"],
                    [[k, f"{v:.1f}", f"{v / total:.0%}"] for k, v in ms.items()]
                    + [["total", f"{total:.1f}", f"= {1000 / total:.1f} images/s per core"]])


class TreeCpu:
    """User+sys CPU seconds of this process and of every process it starts while open (a local engine's
    workers; the Ray driver and everything Ray starts in its session), sampled from ``/proc`` every ``every``
    seconds, each process's last sample kept; the reaped children's own account (``RUSAGE_CHILDREN``) is the
    floor of the others' sum, since a process that ends between two samples loses its last moments. The
    sampling thread's own CPU is left out. ``series``: (time.time(), CPU so far) at every sample."""

    def __init__(self, every: float = 0.25) -> None:
        self.every = every
        self.tick = os.sysconf("SC_CLK_TCK")
        self.seen: dict[tuple[int, int], float] = {}  # (pid, start time) -> CPU seconds
        self.series: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._sampling = 0.0  # the sampling thread's own CPU
        self.cpu_s = math.nan

    def _stat(self, pid: str) -> tuple[int, int, int, float] | None:
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        f = raw[raw.rindex(")") + 2 :].split()  # fields from the state on (the name may hold spaces)
        return int(f[1]), int(f[3]), int(f[19]), (int(f[11]) + int(f[12])) / self.tick  # ppid, sid, start, cpu

    def sample(self) -> None:
        stats = {int(d): st for d in os.listdir("/proc") if d.isdigit() and (st := self._stat(d)) is not None}
        me = os.getpid()
        tree, grew = {me}, True
        while grew:
            more = {pid for pid, st in stats.items() if st[0] in tree} - tree
            grew = bool(more)
            tree |= more
        sessions = {stats[p][1] for p in tree if p != me and p in stats} - {os.getsid(0)}
        for pid, (_ppid, sid, start, cpu) in stats.items():
            if pid != me and (pid in tree or sid in sessions):
                key = (pid, start)
                self.seen[key] = max(cpu, self.seen.get(key, 0.0))

    def _own(self) -> float:
        t = os.times()
        return t.user + t.system - self._sampling

    def _run(self) -> None:
        c0 = time.thread_time()
        while not self._stop.wait(self.every):
            self.sample()
            self._sampling = time.thread_time() - c0
            self.series.append((time.time(), self._own() - self._own0 + sum(self.seen.values())))

    def between(self, t0: float, t1: float) -> float:
        """CPU seconds spent from ``t0`` to ``t1`` (interpolated between samples)."""
        ts, cs = [t for t, _ in self.series], [c for _, c in self.series]
        return float(np.interp(t1, ts, cs) - np.interp(t0, ts, cs)) if len(ts) > 1 else math.nan

    def __enter__(self) -> TreeCpu:
        self._own0, self._children = self._own(), resource.getrusage(resource.RUSAGE_CHILDREN)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        reaped = children.ru_utime - self._children.ru_utime + children.ru_stime - self._children.ru_stime
        self.cpu_s = self._own() - self._own0 + max(reaped, sum(self.seen.values()))


def bench_engine(engine: str, workers: int, list_file: Path, batch_size: int) -> dict[str, Any]:
    from agegender.scale import BatchConfig, run_batch
    from agegender.scale.parts import MANIFEST_DIR, Manifest

    with tempfile.TemporaryDirectory(prefix="agb") as tmp:
        out = Path(tmp) / "out"
        t0 = time.time()
        with TreeCpu() as cpu:
            s = run_batch(BatchConfig(inputs=[str(list_file)], out_dir=out, engine=engine, workers=workers,
                                      batch_size=batch_size, progress=False))
        wall = time.time() - t0
        ms = sorted((Manifest.from_json(p.read_text()) for p in (out / MANIFEST_DIR).glob("*.json")),
                    key=lambda m: m.created)
    start, end = min(m.started for m in ms), max(m.finished for m in ms)
    return {
        "engine": engine, "workers": workers, "images": s.images, "faces": s.faces, "failures": s.failures,
        "wall_s": wall, "ray_init_s": s.startup_seconds, "startup_s": start - t0, "window_s": end - start,
        "tail_s": t0 + wall - end, "window_images_per_s": s.images / (end - start),
        "busy_ms_per_image": 1000 * sum(m.finished - m.started for m in ms) / s.images,
        "end_to_end_images_per_s": s.images / wall, "parts": len(ms), "nodes": len(s.nodes),
        "cpu_s": cpu.cpu_s, "images_per_cpu_s": s.images / cpu.cpu_s, "window_cpu_s": cpu.between(start, end),
        "window_images_per_cpu_s": s.images / cpu.between(start, end),
    }


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each number the median over the rounds (the rounds themselves kept under "rounds")."""
    out = dict(runs[0])
    for k, v in runs[0].items():
        if isinstance(v, float):
            out[k] = float(np.median([r[k] for r in runs]))
    out["rounds"] = runs
    return out


def bench_commit(batch_size: int, repeat: int = 20) -> float:
    """Milliseconds to commit one part of ``batch_size`` one-face images as Parquet (rows as a real run makes)."""
    from agegender.scale.parts import commit_part
    from agegender.scale.rows import COLUMNS, InputResult

    row = ["/data/photos/2024/06/IMG_000123.jpg", "0", "101.5", "88.2", "190.7", "201.9", "0.9987", "female",
           "0.8765", "31.4", "24.9", "38.2", "25-32", "", "model", "1.0.0", "0" * 64]
    assert len(row) == len(COLUMNS)
    results = [InputResult(f"/data/{i}.jpg", (row,), 1, False) for i in range(batch_size)]
    times = []
    with tempfile.TemporaryDirectory(prefix="agc") as tmp:
        (Path(tmp) / "_manifests").mkdir()
        for i in range(repeat):
            t0 = time.perf_counter()
            commit_part(Path(tmp), f"part-{i:04d}", "parquet", results)
            times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--engines", default="local,ray")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--stage-n", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=2, help="rounds of every engine configuration (medians reported)")
    ap.add_argument("--photo-size", default="4032x3024", help="WxH of the phone-sized photo")
    ap.add_argument("--photo-n", type=int, default=20)
    ap.add_argument("--engines-only", action="store_true", help="(b) only: no stage tables, no commit cost")
    ap.add_argument("--out", help="also write the figures as JSON here")
    args = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    paths = utkface_images(args.n)
    stages = photo_stages = None
    if not args.engines_only:
        stages = bench_stages(every_kth(paths, args.stage_n))
        print(f"## Where the time goes (one process, one thread, {stages['images']} UTKFace images, "
              f"{stages['faces']} faces)\n")
        print(stage_table(stages))
        with tempfile.TemporaryDirectory(prefix="agp") as tmp:
            photo = phone_photo(args.photo_size, Path(tmp))
            photo_stages = bench_stages([photo] * args.photo_n)
        print(f"\n## The same for a {args.photo_size} JPEG photo with one face ({args.photo_n} times)\n")
        print(stage_table(photo_stages))

    runs = []
    with tempfile.TemporaryDirectory(prefix="agl") as tmp:
        list_file = Path(tmp) / "images.txt"
        list_file.write_text("\n".join(paths) + "\n")
        configs = [(e, int(w)) for e in args.engines.split(",") for w in args.workers.split(",")]
        rounds: dict[tuple[str, int], list[dict[str, Any]]] = {c: [] for c in configs}
        for k in range(args.repeat):  # the configurations take turns, so a change in the machine's load hits all
            for engine, w in configs:
                print(f"round {k + 1}: {engine} x{w} ...", file=sys.stderr, flush=True)
                rounds[(engine, w)].append(bench_engine(engine, w, list_file, args.batch_size))
        runs = [median_run(rounds[c]) for c in configs]
    print(f"\n## Engines ({len(paths)} UTKFace images, parts of {args.batch_size}; medians of {args.repeat} "
          "rounds taken in turns)\n")
    print(md_table(
        ["engine", "workers", "wall s", "start-up s", "of which Ray start s", "processing s", "tail s",
         "processing images/s", "worker-busy ms/image", "end-to-end images/s", "CPU s (all processes)",
         "images per CPU-second: job / processing"],
        [[r["engine"], str(r["workers"]), f"{r['wall_s']:.1f}", f"{r['startup_s']:.1f}",
          f"{r['ray_init_s']:.1f}" if r["engine"] == "ray" else "-", f"{r['window_s']:.1f}", f"{r['tail_s']:.1f}",
          f"{r['window_images_per_s']:.1f}", f"{r['busy_ms_per_image']:.1f}", f"{r['end_to_end_images_per_s']:.1f}",
          f"{r['cpu_s']:.1f}", f"{r['images_per_cpu_s']:.1f} / {r['window_images_per_cpu_s']:.1f}"]
         for r in runs]))
    print("\nImages per CPU-second: images over the user+sys CPU of the whole job (this process, the workers or "
          "the Ray driver and every process of its Ray instance, start-up included), and over the CPU spent in "
          "the processing window alone (sampled from /proc): the throughput of one fully used core.")
    local = {r["workers"]: r for r in runs if r["engine"] == "local"}
    rows = []
    for r in runs:
        base = local.get(r["workers"])
        if r["engine"] == "ray" and base:
            lost = 1 - r["window_images_per_s"] / base["window_images_per_s"]
            rows.append([str(r["workers"]), f"{r['startup_s'] - base['startup_s']:+.1f}", f"{lost:+.0%}",
                         f"{r['tail_s'] - base['tail_s']:+.1f}", f"{r['wall_s'] - base['wall_s']:+.1f}"])
    if rows:
        print("\n## Ray overhead against the local engine\n")
        print(md_table(["workers", "extra start-up s", "processing throughput lost", "extra tail s",
                        "extra wall s"], rows))
    commit_ms = math.nan if args.engines_only else bench_commit(args.batch_size)
    print(f"\nDriver cost of committing one part of {args.batch_size} images (Parquet, fsync): {commit_ms:.1f} ms "
          f"= at most {1000 * args.batch_size / commit_ms:,.0f} images/s through one driver")
    env = environment()
    print(f"\n{env['cpu']}, {env['cpu_count']} cores, onnxruntime {env['onnxruntime']}, Python {env['python']}")
    if args.out:
        Path(args.out).write_text(json.dumps({"environment": env, "stages": stages, "photo_stages": photo_stages,
                                              "runs": runs,
                                              "commit_ms_per_part": commit_ms}, indent=2))


if __name__ == "__main__":
    main()
