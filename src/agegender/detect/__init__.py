"""Face detectors returning boxes, scores and 5 landmarks, behind one small interface."""

from .base import Detector
from .retinaface import RetinaFaceDetector

__all__ = ["Detector", "RetinaFaceDetector"]
