"""Frames from a video file or a camera, decoded by OpenCV (the ``video`` extra) in a background thread."""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AgeGenderError
from ..io import is_image_path

log = logging.getLogger(__name__)


class VideoError(AgeGenderError):
    """A video cannot be opened or decoded, or an output video cannot be written."""


@dataclass(frozen=True)
class VideoFrame:
    index: int
    time: float  # seconds from the start
    image: np.ndarray  # RGB uint8 (H, W, 3)


def import_cv2():
    """OpenCV, quiet: FFmpeg's and OpenCV's own messages would break our one-line errors."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    try:
        import cv2
    except ImportError as exc:
        raise VideoError("video support needs OpenCV: pip install '.[video]' in the agegender source folder"
                         ) from exc
    return cv2


class VideoReader:
    """Iterates :class:`VideoFrame` (RGB) from a file path or a camera index.

    Decoding runs in a background thread, ``prefetch`` frames ahead, so it overlaps the analysis.
    After iteration, ``truncated`` is set when a file stopped decoding before the frame count its
    container declares (a cut or corrupt file); ``frames_read`` says how many frames came out.
    """

    def __init__(self, source: str | os.PathLike | int, prefetch: int = 4, max_frames: int | None = None) -> None:
        cv2 = import_cv2()
        self.is_camera = isinstance(source, int)
        self.name = f"camera {source}" if self.is_camera else os.fspath(source)
        if not self.is_camera:
            path = Path(source)
            if not path.exists():
                raise VideoError(f"{self.name}: no such file")
            if path.is_dir():
                raise VideoError(f"{self.name}: is a folder, not a video")
            if path.stat().st_size == 0:
                raise VideoError(f"{self.name}: empty file")
            if is_image_path(path):
                raise VideoError(f"{self.name}: a still image, not a video (use agegender predict)")
        self._cap = cv2.VideoCapture(source if self.is_camera else os.fspath(source))
        if not self._cap.isOpened():
            self._cap.release()
            what = "cannot open the camera" if self.is_camera else "cannot decode: not a video, or corrupt"
            raise VideoError(f"{self.name}: {what}")
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise VideoError(f"{self.name}: no frame could be decoded (corrupt or empty video)")
        self._first = first
        self.height, self.width = first.shape[:2]
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if math.isfinite(fps) and 0.0 < fps < 1000.0 else 30.0
        count = float(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0)
        self.frame_count: int | None = int(count) if not self.is_camera and math.isfinite(count) and count > 0 else None
        self.max_frames = max_frames
        self.prefetch = max(1, prefetch)
        self.frames_read = 0
        self.truncated = False
        self._stop = threading.Event()
        self._started = False
        self._worker: threading.Thread | None = None

    @property
    def expected_frames(self) -> int | None:
        """How many frames iteration should give (for a progress bar), if known."""
        if self.frame_count is None:
            return self.max_frames
        return min(self.frame_count, self.max_frames) if self.max_frames else self.frame_count

    def _produce(self, out: queue.Queue) -> None:
        cv2 = import_cv2()
        t0 = time.monotonic()
        index = 0
        bgr: np.ndarray | None = self._first
        try:
            while not self._stop.is_set():
                if bgr is None:
                    ok, bgr = self._cap.read()
                    if not ok or bgr is None:
                        break
                t = (time.monotonic() - t0) if self.is_camera else index / self.fps
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                bgr = None
                self._put(out, VideoFrame(index, t, rgb))
                index += 1
                if self.max_frames is not None and index >= self.max_frames:
                    break
        except Exception as exc:  # handed to the consumer, raised there
            self._put(out, exc)
        finally:
            self._put(out, None)

    def _put(self, out: queue.Queue, item: object) -> None:
        while not self._stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[VideoFrame]:
        if self._started:
            raise RuntimeError("a VideoReader can be iterated once")
        self._started = True
        frames: queue.Queue = queue.Queue(maxsize=self.prefetch)
        worker = threading.Thread(target=self._produce, args=(frames,), name="agegender-video-decode", daemon=True)
        self._worker = worker
        worker.start()
        try:
            while True:
                item = frames.get()
                if item is None:
                    break
                if isinstance(item, Exception):
                    raise VideoError(f"{self.name}: decoding failed ({item})") from item
                self.frames_read += 1
                yield item
        finally:
            self._stop.set()
            worker.join()
            self._worker = None
            self._finish()

    def _finish(self) -> None:
        stopped_early = self.max_frames is not None and self.frames_read >= self.max_frames
        if self.frame_count is not None and not stopped_early and self.frames_read < self.frame_count - 1:
            self.truncated = True
            log.warning("%s: decoding stopped after %d of %d frames (cut or corrupt file)",
                        self.name, self.frames_read, self.frame_count)
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.join()
            self._worker = None
        self._cap.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_video(source: str | os.PathLike | int, max_frames: int | None = None) -> VideoReader:
    """A :class:`VideoReader` for a file path or a camera index; raises :class:`VideoError` if unusable."""
    return VideoReader(source, max_frames=max_frames)
