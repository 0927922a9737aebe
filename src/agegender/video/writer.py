"""Outputs of video analysis: the annotated video, tracks.csv (one row per track), frames.csv (per face per frame)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from .reader import VideoError, import_cv2
from .results import FrameResult, Track, TrackedFace

TRACK_COLUMNS = ["track", "first_frame", "last_frame", "first_time", "last_time", "frames_seen", "gender",
                 "p_female", "age", "age_low", "age_high", "age_group"]
FRAME_COLUMNS = ["frame", "time", "track", "x1", "y1", "x2", "y2", "detected", "det_score", "gender", "p_female",
                 "age", "age_low", "age_high", "age_group", "frame_gender", "frame_p_female", "frame_age"]

#: container -> codec available in OpenCV's pip wheels (their FFmpeg has no H.264 encoder)
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "FFV1"}
_COLORS = {"female": (230, 60, 140), "male": (40, 120, 230)}  # RGB, as agegender.annotate


def face_label(face: TrackedFace) -> str:
    g = "F" if face.gender == "female" else "M"
    return (f"#{face.track_id} {g} {face.gender_probability:.0%}, {face.age:.0f} "
            f"({face.age_low:.0f}-{face.age_high:.0f})")


def draw_frame(image: np.ndarray, result: FrameResult) -> np.ndarray:
    """A copy of the RGB frame with each tracked face boxed and labelled (thin box: predicted, not detected)."""
    cv2 = import_cv2()
    out = np.ascontiguousarray(image).copy()
    h, w = out.shape[:2]
    scale = max(0.4, max(h, w) / 1400)
    thick = max(1, round(max(h, w) / 500))
    for f in result.faces:
        color = _COLORS.get(f.gender, (255, 200, 0))
        x1, y1, x2, y2 = (int(round(v)) for v in f.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, 2 * thick if f.detected else thick, cv2.LINE_AA)
        text = face_label(f)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = y1 - 4 if y1 - th - base - 4 >= 0 else y2 + th + 4
        cv2.rectangle(out, (x1, ty - th - 3), (x1 + tw + 4, ty + base - 1), color, -1)
        cv2.putText(out, text, (x1 + 2, ty - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


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
