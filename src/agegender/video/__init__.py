"""Video and webcam: faces tracked over time, each with a gender and age that settle instead of flickering.

Needs the ``video`` extra (OpenCV headless) for reading and writing files; the analysis itself takes any
iterable of RGB frames. OpenCV is imported only when a video is opened or written.
"""

from .analyzer import VideoAnalyzer
from .reader import VideoError, VideoFrame, VideoReader, open_video
from .results import FrameResult, Track, TrackedFace

__all__ = ["FrameResult", "Track", "TrackedFace", "VideoAnalyzer", "VideoError", "VideoFrame", "VideoReader",
           "open_video"]
