"""Outputs of video analysis: the annotated video, tracks.csv (one row per track), frames.csv (per face per frame)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..annotate import Mark, color_of, draw_marks, label_parts, layout_labels
from .reader import VideoError, import_cv2
from .results import FrameResult, Track, TrackedFace

TRACK_COLUMNS = ["track", "first_frame", "last_frame", "first_time", "last_time", "frames_seen", "gender",
                 "p_female", "age", "age_low", "age_high", "age_group"]
FRAME_COLUMNS = ["frame", "time", "track", "x1", "y1", "x2", "y2", "detected", "det_score", "gender", "p_female",
                 "age", "age_low", "age_high", "age_group", "frame_gender", "frame_p_female", "frame_age"]

#: container -> codec available in OpenCV's pip wheels (their FFmpeg has no H.264 encoder)
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "FFV1"}


def face_label(face: TrackedFace) -> str:
    return ", ".join(label_parts(face, f"#{face.track_id} "))


def draw_frame(image: np.ndarray, result: FrameResult) -> np.ndarray:
    """A copy of the RGB frame with each tracked face boxed and labelled (thin box: predicted, not detected).

    Drawn as :func:`agegender.annotate.draw_faces` draws a photo: the same label placement (labels
    never overlap nor leave the frame) and sizes that follow the frame's.
    """
    img = Image.fromarray(np.ascontiguousarray(image)).convert("RGB")
    faces = result.faces
    labels = layout_labels([f.box for f in faces], [label_parts(f, f"#{f.track_id} ") for f in faces],
                           img.width, img.height)
    marks = [Mark(f.box, color_of(f.gender), lab, thin=not f.detected) for f, lab in zip(faces, labels)]
    return np.asarray(draw_marks(img, marks)).copy()


class AnnotatedVideoWriter:
    """Writes RGB frames to a video file (.mp4/.m4v/.mov: MPEG-4 Part 2; .avi: Motion JPEG; .mkv: lossless FFV1)."""

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int]) -> None:
        cv2 = import_cv2()
        self.path = Path(path)
        fourcc = _FOURCC.get(self.path.suffix.lower())
        if fourcc is None:
            raise VideoError(f"{self.path}: unsupported video extension (use one of {', '.join(sorted(_FOURCC))})")
        if not self.path.parent.is_dir():
            raise VideoError(f"{self.path}: folder {self.path.parent} does not exist")
        self.size = size
        self._writer = cv2.VideoWriter(os.fspath(self.path), cv2.VideoWriter_fourcc(*fourcc), float(fps), size)
        if not self._writer.isOpened():
            raise VideoError(f"{self.path}: cannot write a video there")

    def write(self, rgb: np.ndarray) -> None:
        cv2 = import_cv2()
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        self._writer.release()

    def __enter__(self) -> AnnotatedVideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _f(v: float | None, nd: int) -> str:
    return "" if v is None else f"{v:.{nd}f}"


def track_rows(tracks: list[Track]) -> list[list[str]]:
    return [[str(t.track_id), str(t.first_frame), str(t.last_frame), _f(t.first_time, 3), _f(t.last_time, 3),
             str(t.frames_seen), t.gender, _f(t.p_female, 4), _f(t.age, 1), _f(t.age_low, 1), _f(t.age_high, 1),
             t.age_group] for t in tracks]


def frame_rows(result: FrameResult) -> list[list[str]]:
    rows = []
    for f in result.faces:
        raw = f.frame_estimate
        rows.append([str(result.index), _f(result.time, 3), str(f.track_id), *(_f(v, 1) for v in f.box),
                     "1" if f.detected else "0", _f(f.det_score, 4), f.gender, _f(f.p_female, 4), _f(f.age, 1),
                     _f(f.age_low, 1), _f(f.age_high, 1), f.age_group, raw.gender if raw else "",
                     _f(raw.p_female if raw else None, 4), _f(raw.age if raw else None, 1)])
    return rows


def write_tracks_csv(path: str | os.PathLike, tracks: list[Track]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(TRACK_COLUMNS)
        w.writerows(track_rows(tracks))


class FramesCsvWriter:
    """frames.csv, written as the frames come (one row per tracked face per frame)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self._fh = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._csv = csv.writer(self._fh, lineterminator="\n")
        self._csv.writerow(FRAME_COLUMNS)

    def write(self, result: FrameResult) -> None:
        self._csv.writerows(frame_rows(result))

    def close(self) -> None:
        self._fh.close()
