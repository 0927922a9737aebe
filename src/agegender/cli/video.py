"""``agegender video``: faces tracked through a video file or a camera, with labels that settle."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .common import (
    COUNT,
    EXIT_OK,
    EXIT_SOME_FAILED,
    NON_NEGATIVE,
    OUT_FILE,
    PIXELS,
    PROBABILITY,
    THREADS,
    UsageError,
    progress_wanted,
)


def _display_available() -> bool:
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    from ..video.reader import import_cv2

    cv2 = import_cv2()
    try:  # the headless build has no window support: it raises here
        cv2.namedWindow("agegender")
        return True
    except cv2.error:
        return False


def _run_frames(analyzer: Any, video: Any, writer: Any, frames_csv: Any, show: bool, quiet: bool) -> bool:
    """Analyse every frame, writing and showing the drawn ones; True when stopped by Ctrl-C."""
    from tqdm import tqdm

    from ..video.writer import draw_frame

    images = {}

    def frames() -> Iterator[Any]:  # keep each image until its result is drawn
        for f in video:
            images[f.index] = f.image
            yield f

    bar = tqdm(total=video.expected_frames, unit="frame", disable=not progress_wanted(quiet), file=sys.stderr,
               desc=Path(video.name).name if not video.is_camera else video.name)
    try:
        for result in analyzer.analyze(frames(), fps=video.fps):
            image = images.pop(result.index)
            if frames_csv:
                frames_csv.write(result)
            if writer or show:
                drawn = draw_frame(image, result)
                if writer:
                    writer.write(drawn)
                if show and _show(drawn):
                    break
            bar.update(1)
    except KeyboardInterrupt:  # a camera is stopped with Ctrl-C: still write what we have
        return True
    finally:
        bar.close()
        if show:
            _close_window()
    return False


def cmd_video(args: argparse.Namespace) -> int:
    from ..errors import AgeGenderError, ModelCardError
    from ..predictor import Predictor
    from ..video import VideoAnalyzer, open_video
    from ..video.writer import AnnotatedVideoWriter, FramesCsvWriter, write_tracks_csv

    if (args.input is None) == (args.camera is None):
        raise UsageError("give a video file or --camera INDEX (one of them)")

    logging.getLogger("agegender.video.reader").setLevel(logging.ERROR)  # a cut file is reported below
    show = False
    out, tracks_csv = args.out, args.csv
    if args.camera is not None:
        show = not args.no_display and _display_available()
        if not show and not (out or tracks_csv or args.frames):  # no screen: keep the results somewhere
            out, tracks_csv = f"camera{args.camera}.mp4", f"camera{args.camera}_tracks.csv"

    writer = frames_csv = video = None
    try:
        video = open_video(args.camera if args.camera is not None else args.input, max_frames=args.max_frames)
        if video.is_camera and not show:
            print(f"no display: writing {out or tracks_csv or args.frames} (Ctrl-C to stop)", file=sys.stderr)
        predictor = Predictor(model=args.model, threads=args.threads, max_faces=args.max_faces,
                              min_face_size=args.min_face_size, score_threshold=args.score_threshold)
        predictor.card  # load (and verify) the model before the first frame  # noqa: B018
        analyzer = VideoAnalyzer(predictor, every=args.every)
        if out:
            writer = AnnotatedVideoWriter(out, video.fps, (video.width, video.height))
        if args.frames:
            frames_csv = FramesCsvWriter(args.frames)
        interrupted = _run_frames(analyzer, video, writer, frames_csv, show, args.quiet)
        tracks = analyzer.tracks()
        if tracks_csv:
            write_tracks_csv(tracks_csv, tracks)
    except ModelCardError:
        raise  # the command line's usual handling (exit 2 for a model that is not found)
    except AgeGenderError as exc:
        print(f"agegender: error: {exc}", file=sys.stderr)
        return EXIT_SOME_FAILED
    finally:
        if video:
            video.close()
        if writer:
            writer.close()
        if frames_csv:
            frames_csv.close()
    for t in tracks:
        print(t)
    if not tracks:
        print(f"{video.name}: no face found in {video.frames_read} frame(s)")
    if video.truncated:
        print(f"agegender: error: {video.name}: decoding stopped after {video.frames_read} of "
              f"{video.frame_count} frames (cut or corrupt file); results cover the frames decoded", file=sys.stderr)
        return EXIT_SOME_FAILED
    return 130 if interrupted and args.camera is None else EXIT_OK


def _show(rgb) -> bool:
    """Show a frame in the window; True when the user pressed q or Esc."""
    from ..video.reader import import_cv2

    cv2 = import_cv2()
    cv2.imshow("agegender", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return (cv2.waitKey(1) & 0xFF) in (ord("q"), 27)


def _close_window() -> None:
    from ..video.reader import import_cv2

    import_cv2().destroyAllWindows()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("video", help="track faces through a video file or a camera; gender and age per person")
    p.add_argument("input", nargs="?", metavar="INPUT", help="a video file (anything FFmpeg in OpenCV reads)")
    p.add_argument("--camera", type=NON_NEGATIVE, metavar="INDEX", help="read camera INDEX instead of a file (e.g. 0)")
    p.add_argument("--out", type=OUT_FILE, metavar="FILE",
                   help="write the annotated video here (.mp4, .avi, .mov, .mkv)")
    p.add_argument("--csv", type=OUT_FILE, metavar="FILE", help="write one row per track here")
    p.add_argument("--frames", type=OUT_FILE, metavar="FILE", help="write one row per face per frame here")
    p.add_argument("--every", type=COUNT, default=1, metavar="N",
                   help="detect and predict every N frames; frames between follow the tracks (default 1)")
    p.add_argument("--max-frames", type=COUNT, default=None, metavar="N", help="stop after N frames")
    p.add_argument("--no-display", action="store_true", help="with --camera: never open a window")
    p.add_argument("--max-faces", type=COUNT, default=None, metavar="N", help="at most N faces per frame (largest)")
    p.add_argument("--min-face-size", type=PIXELS, default=12.0, metavar="PX", help="ignore smaller faces")
    p.add_argument("--score-threshold", type=PROBABILITY, default=0.7, metavar="P",
                   help="detector confidence for a new track (0-1)")
    p.add_argument("--threads", type=THREADS, default=0, metavar="N", help="CPU threads (0: automatic)")
    p.add_argument("--model", metavar="MODEL",
                   help="a shipped model name (agegender info --list), a model card, an ONNX file or a folder")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_video)
