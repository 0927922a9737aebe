#!/usr/bin/env python3
"""Frames per second of ``agegender.video.VideoAnalyzer``; prints Markdown tables.

A clip is generated per resolution (640x480 and 1280x720): two real public-domain face photos
(scikit-image's astronaut and matplotlib's Grace Hopper), each about a quarter of the frame high,
sliding across scikit-image's coffee photo, written as MPEG-4 (mp4v) with OpenCV. Each configuration
(resolution x threads x detection every N frames) decodes the file (background thread), detects,
tracks, runs the model and smooths, frame by frame; frames per second = frames / wall time, best of
``--repeat`` runs after a warm-up. Drawing and writing the annotated video are timed apart (last column).

A second table shows, on the 640x480 clip with detection on every frame, how much the per-frame labels
move and how much the tracks' settled labels move.

usage:
  .venv/bin/python benchmarks/video.py [--frames 90] [--threads 1,2] [--every 1,3] [--repeat 2] [--out video.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import environment, md_table
from PIL import Image, ImageDraw, ImageFilter

from agegender import Predictor
from agegender.video import VideoAnalyzer, open_video
from agegender.video.reader import import_cv2
from agegender.video.writer import AnnotatedVideoWriter, draw_frame


def _sprite(photo: np.ndarray, box, face_height: float) -> tuple[np.ndarray, np.ndarray]:
    """The face of a photo with some margin, scaled so the face is ``face_height`` pixels, and a soft oval mask."""
    x1, y1, x2, y2 = box
    fw, fh = x2 - x1, y2 - y1
    region = (int(x1 - 0.5 * fw), int(y1 - 0.45 * fh), int(x2 + 0.5 * fw), int(y2 + 0.4 * fh))
    crop = Image.fromarray(photo).crop(region)
    s = face_height / fh
    crop = crop.resize((max(1, round(crop.width * s)), max(1, round(crop.height * s))), Image.LANCZOS)
    m = Image.new("L", crop.size, 0)
    ImageDraw.Draw(m).ellipse([crop.width * 0.06, crop.height * 0.04, crop.width * 0.94, crop.height * 0.96], fill=255)
    mask = np.asarray(m.filter(ImageFilter.GaussianBlur(max(2.0, crop.width * 0.04))), np.float32)[..., None] / 255
    return np.asarray(crop, np.float32), mask


def make_clip(path: Path, size: tuple[int, int], n: int, predictor: Predictor, fps: float = 25.0) -> None:
    import matplotlib
    from skimage import data

    w, h = size
    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    photos = [np.asarray(data.astronaut()), np.asarray(Image.open(hopper).convert("RGB"))]
    sprites = [_sprite(p, predictor.predict(p).faces[0].box, h / 4) for p in photos]
    background = np.asarray(Image.fromarray(data.coffee()).resize((w, h), Image.BILINEAR), np.float32)
    cv2 = import_cv2()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for k in range(n):
        a = k / max(1, n - 1)
        img = background.copy()
        for j, (patch, mask) in enumerate(sprites):
            ph, pw = patch.shape[:2]
            x = (0.05 + 0.6 * a) * w if j == 0 else (0.6 - 0.5 * a) * w
            y = (0.1 if j == 0 else 0.45) * h
            ox, oy = int(min(max(x, 0), w - pw)), int(min(max(y, 0), h - ph))
            region = img[oy : oy + ph, ox : ox + pw]
            region[:] = region * (1 - mask) + patch * mask
        writer.write(cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    writer.release()


def run_once(clip: Path, threads: int, every: int, annotate_to: Path | None = None) -> tuple[float, int, list]:
    predictor = Predictor(threads=threads)
    analyzer = VideoAnalyzer(predictor, every=every)
    analyzer.detector  # noqa: B018  (load the model and the detector before the clock starts)
    predictor.card  # noqa: B018
    frames = 0
    results = []
    writer = None
    t0 = time.perf_counter()
    with open_video(clip) as video:
        images = {}

        def source():
            for f in video:
                if annotate_to is not None:
                    images[f.index] = f.image
                yield f

        if annotate_to is not None:
            writer = AnnotatedVideoWriter(annotate_to, video.fps, (video.width, video.height))
        for r in analyzer.analyze(source()):
            frames += 1
            results.append(r)
            if writer is not None:
                writer.write(draw_frame(images.pop(r.index), r))
    if writer is not None:
        writer.close()
    return time.perf_counter() - t0, frames, results


def stability(results: list) -> list[list[str]]:
    rows = []
    by_track: dict[int, list] = {}
    for r in results:
        for f in r.faces:
            if f.detected:
                by_track.setdefault(f.track_id, []).append(f)
    for tid, faces in sorted(by_track.items()):
        raw_g = [f.frame_estimate.gender for f in faces]
        sm_g = [f.gender for f in faces]
        raw_a = np.array([f.frame_estimate.age for f in faces])
        sm_a = np.array([f.age for f in faces])
        settled = sm_a[len(sm_a) // 3 :]
        flips = lambda g: sum(a != b for a, b in zip(g, g[1:]))  # noqa: E731
        rows.append([str(tid), str(len(faces)), str(flips(raw_g)), str(flips(sm_g)),
                     f"{np.abs(np.diff(raw_a)).mean():.2f}", f"{np.abs(np.diff(sm_a)).mean():.2f}",
                     f"{raw_a.min():.1f}-{raw_a.max():.1f}", f"{settled.min():.1f}-{settled.max():.1f}"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--every", default="1,3")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", help="also write the numbers as JSON here")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    everys = [int(e) for e in args.every.split(",")]
    out: dict[str, Any] = {"environment": environment(), "frames": args.frames, "runs": []}
    rows = []
    stab_rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        setup = Predictor(threads=1)
        for size in ((640, 480), (1280, 720)):
            clip = Path(tmp) / f"clip_{size[0]}x{size[1]}.mp4"
            make_clip(clip, size, args.frames, setup)
            for t in threads:
                for e in everys:
                    run_once(clip, t, e)  # warm-up (page cache, ONNX Runtime's first runs)
                    best = min(run_once(clip, t, e)[0] for _ in range(args.repeat))
                    secs, n, results = run_once(clip, t, e, annotate_to=Path(tmp) / "annotated.mp4")
                    fps, fps_ann = args.frames / best, n / secs
                    out["runs"].append({"size": f"{size[0]}x{size[1]}", "threads": t, "every": e, "fps": fps,
                                        "fps_with_annotated_output": fps_ann})
                    rows.append([f"{size[0]}x{size[1]}", str(t), str(e), f"{fps:.1f}", f"{1000 / fps:.0f}",
                                 f"{fps_ann:.1f}"])
                    if size == (640, 480) and t == threads[0] and e == 1:
                        stab_rows = stability(results)
    env = out["environment"]
    print(f"CPU: {env['cpu']} ({env['cpu_count']} cores), Python {env['python']}, "
          f"ONNX Runtime {env['onnxruntime']}; {args.frames} frames, 2 faces, default model\n")
    print(md_table(["frame size", "threads", "detect every", "frames/s", "ms/frame", "frames/s with annotated video"],
                   rows))
    print("\nLabel stability (640x480, detection every frame): per-frame model output vs the track's settled label\n")
    print(md_table(["track", "frames detected", "gender flips, per frame", "gender flips, track",
                    "mean age step (years), per frame", "mean age step, track",
                    "age range, per frame", "age range, track (after its first third)"], stab_rows))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
