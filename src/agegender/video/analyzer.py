"""VideoAnalyzer: detect faces (every frame or every N), track them, label each track from all its frames."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import numpy as np

from ..detect.base import Detector
from ..predictor import Predictor
from ..types import AgeGender
from .reader import VideoFrame, VideoReader
from .results import FrameResult, Track, TrackedFace
from .smoothing import TrackEvidence, evidence_weight
from .tracker import FaceTracker, TrackState

log = logging.getLogger(__name__)


class VideoAnalyzer:
    """Faces followed through a video, each with a gender and age that settle instead of flickering.

    >>> from agegender.video import VideoAnalyzer, open_video
    >>> analyzer = VideoAnalyzer(every=2)
    >>> with open_video("clip.mp4") as video:
    ...     for frame in analyzer.analyze(video):
    ...         for face in frame.faces:
    ...             print(frame.index, face)
    >>> for track in analyzer.tracks():
    ...     print(track)

    Args:
        predictor: the :class:`Predictor` whose model (and detector settings) to use; default ``Predictor()``.
        every: run the detector and the model every ``every`` frames; frames between carry the tracks
            forward on their Kalman-predicted boxes, labelled from the track.
        low_score: weak detections down to this confidence may extend an existing track (ByteTrack's
            second stage); new tracks need the predictor's ``score_threshold``.
        max_lost_seconds: how long a face that disappeared is remembered, to give it back its id.
        min_hits: detections in a row before a new face gets an id (filters one-frame false positives).
    """

    def __init__(self, predictor: Predictor | None = None, every: int = 1, low_score: float = 0.3,
                 max_lost_seconds: float = 2.0, min_hits: int = 2) -> None:
        if every < 1:
            raise ValueError("every must be at least 1")
        self.predictor = predictor if predictor is not None else Predictor()
        self.every = every
        self.low_score = low_score
        self.max_lost_seconds = max_lost_seconds
        self.min_hits = min_hits
        self._tracker: FaceTracker | None = None

    @property
    def low_threshold(self) -> float:
        """The weakest detection that may extend a track (``low_score``, at most the predictor's threshold)."""
        return min(self.low_score, self.predictor.score_threshold)

    @property
    def detector(self) -> Detector:
        """The predictor's detector at :attr:`low_threshold` (:meth:`Predictor.detector_at`)."""
        return self.predictor.detector_at(self.low_threshold)

    # -- the loop -----------------------------------------------------------------------------------
    def analyze(self, frames: Iterable[np.ndarray | VideoFrame], fps: float | None = None) -> Iterator[FrameResult]:
        """Yield one :class:`FrameResult` per frame (RGB uint8 arrays or :class:`VideoFrame`).

        ``fps`` (default: the reader's, else 30) turns frame numbers into times. Each call starts afresh;
        :meth:`tracks` then summarises the tracks of that call (also while it runs).
        """
        if fps is None:
            fps = frames.fps if isinstance(frames, VideoReader) else 30.0
        self.predictor.load(detector=False)  # load and verify the model before the first frame
        tracker = FaceTracker(high=self.predictor.score_threshold, low=self.low_threshold,
                              min_hits=self.min_hits, max_lost=max(1, round(self.max_lost_seconds * fps)))
        self._tracker = tracker
        for k, item in enumerate(frames):
            if isinstance(item, VideoFrame):
                index, t, image = item.index, item.time, item.image
            else:
                index, t, image = k, k / fps, np.asarray(item)
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"frame {index}: expected an RGB uint8 array (H, W, 3), "
                                 f"got {image.shape} {image.dtype}")
            h, w = image.shape[:2]
            tracker.predict()
            detect_now = k % self.every == 0
            if detect_now:
                self._detect_and_update(tracker, index, image, t)
            faces = []
            for tr in tracker.visible:
                label: AgeGender | None = tr.extra.get("label")
                if label is None:
                    continue
                seen = tr.last_frame == index
                box = tr.last_box if seen else tr.box
                faces.append(TrackedFace(
                    track_id=tr.track_id, box=tuple(float(v) for v in box), detected=seen,
                    det_score=tr.last_score if seen else None, gender=label.gender, p_female=label.p_female,
                    age=label.age, age_low=label.age_low, age_high=label.age_high, age_group=label.age_group,
                    frame_estimate=tr.extra.get("raw") if seen else None))
            yield FrameResult(index=index, time=t, width=w, height=h, detected=detect_now, faces=tuple(faces))

    def _detect_and_update(self, tracker: FaceTracker, index: int, image: np.ndarray, t: float) -> None:
        p = self.predictor
        dets = p.detect(image, score_threshold=self.low_threshold)
        matched = tracker.update(index, np.array([d.box for d in dets]).reshape(-1, 4),
                                 np.array([d.score for d in dets]))
        if not matched:
            return
        crops = np.stack([p.align(image, dets[d]) for _, d in matched])
        gender_logp, age_logp = p.calibrate(p.run_network(crops))
        h, w = image.shape[:2]
        pooled_g, pooled_a = [], []
        for j, (tr, d) in enumerate(matched):
            evidence: TrackEvidence = tr.extra.setdefault("evidence", TrackEvidence())
            tr.extra.setdefault("first_time", t)
            tr.extra["last_time"] = t
            evidence.add(gender_logp[j], age_logp[j],
                         evidence_weight(dets[d].box, dets[d].score, (w, h), p.card.input.size))
            g, a = evidence.pooled()
            pooled_g.append(g)
            pooled_a.append(a)
        # one decoding for the frame's own outputs and the tracks' pooled ones
        n = len(matched)
        decoded = p.decode(np.concatenate([gender_logp, np.stack(pooled_g)]),
                           np.concatenate([age_logp, np.stack(pooled_a)]))
        for j, (tr, _) in enumerate(matched):
            tr.extra["raw"], tr.extra["label"] = decoded[j], decoded[n + j]

    # -- summaries ------------------------------------------------------------------------------
    def tracks(self) -> list[Track]:
        """Every confirmed track of the last :meth:`analyze` call so far, by id, with its settled label."""
        if self._tracker is None:
            return []
        return [self._summary(t) for t in self._tracker.all_confirmed() if t.extra.get("label") is not None]

    @staticmethod
    def _summary(t: TrackState) -> Track:
        label: AgeGender = t.extra["label"]
        return Track(track_id=t.track_id, first_frame=t.first_frame, last_frame=t.last_frame,
                     first_time=t.extra["first_time"], last_time=t.extra["last_time"],
                     frames_seen=t.extra["evidence"].frames, gender=label.gender, p_female=label.p_female,
                     age=label.age, age_low=label.age_low, age_high=label.age_high, age_group=label.age_group,
                     age_group_probs=dict(label.age_group_probs))


__all__ = ["VideoAnalyzer"]
