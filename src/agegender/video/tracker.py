"""Multi-face tracker: Kalman-predicted boxes, IoU association in ByteTrack's two stages.

Why our own and not a library: the maintained ByteTrack packages on PyPI pull in far more than a video
command should (``supervision``/``trackers``: matplotlib, SciPy, PyAV and the GUI build of OpenCV,
which clashes with ``opencv-python-headless``; ``norfair`` pins numpy<2; ``bytetracker`` does not build;
``motpy`` is unmaintained). The algorithm is small: this module is it, with numpy only.

Per detection frame (:meth:`FaceTracker.update`):

1. confident detections (score >= ``high``) are matched to every confirmed track, visible or lost, by the
   IoU of the track's predicted box (or, for a lost track, the better of its predicted and last-seen box);
2. the remaining visible tracks are matched to the weak detections (``low`` <= score < ``high``) at a
   stricter IoU: a face half turned away or blurred keeps its track instead of breaking it;
3. tentative tracks (new, not yet confirmed) are matched to the remaining confident detections;
4. unmatched visible tracks become lost (kept ``max_lost`` frames for re-identification by position),
   unmatched tentative tracks are dropped, and the remaining confident detections start tentative tracks,
   confirmed (given an id) after ``min_hits`` detections in a row (at once on the first frame).

Matching is greedy by decreasing IoU, which for the few faces of a video equals the optimal assignment
in practice and needs no solver.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .kalman import BoxKalman


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4), boxes as x1, y1, x2, y2."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def greedy_match(scores: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs (row, column) taken by decreasing score, each row and column at most once, score >= threshold."""
    if scores.size == 0:
        return []
    rows, cols = np.nonzero(scores >= threshold)
    order = np.argsort(-scores[rows, cols], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            pairs.append((r, c))
    return pairs


@dataclass(eq=False)
class TrackState:
    """One tracked face, as the tracker sees it. ``track_id`` is 0 until the track is confirmed."""

    key: int  # internal, unique, assigned at creation
    kalman: BoxKalman
    first_frame: int
    last_frame: int
    last_box: np.ndarray
    last_score: float
    track_id: int = 0
    hits: int = 1  # detections in a row while tentative; all detections once confirmed
    lost: bool = False
    extra: dict = field(default_factory=dict)  # room for the caller's per-track data

    @property
    def confirmed(self) -> bool:
        return self.track_id > 0

    @property
    def box(self) -> np.ndarray:
        """The predicted box now."""
        return self.kalman.box


class FaceTracker:
    """Follows faces from frame to frame. Call :meth:`predict` every frame, :meth:`update` on detection frames.

    Args:
        high: detections at least this confident start tracks and are matched first.
        low: weaker detections (down to this score) only extend existing tracks.
        match_iou: minimum IoU for the first stage (and for tentative tracks).
        low_match_iou: minimum IoU for weak detections.
        min_hits: detections in a row before a new track is confirmed.
        max_lost: frames a lost track is remembered.
    """

    def __init__(self, high: float = 0.7, low: float = 0.3, match_iou: float = 0.2, low_match_iou: float = 0.5,
                 min_hits: int = 2, max_lost: int = 60) -> None:
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError("need 0 <= low <= high <= 1")
        self.high, self.low = high, low
        self.match_iou, self.low_match_iou = match_iou, low_match_iou
        self.min_hits, self.max_lost = max(1, min_hits), max(0, max_lost)
        self.tracks: list[TrackState] = []
        self.finished: list[TrackState] = []  # confirmed tracks dropped after max_lost frames
        self._next_key = 1
        self._next_id = 1
        self._updates = 0

    def predict(self) -> None:
        """Advance every track by one frame."""
        for t in self.tracks:
            t.kalman.predict()

    @property
    def visible(self) -> list[TrackState]:
        """Confirmed tracks that were matched at the last detection frame, by id."""
        return sorted((t for t in self.tracks if t.confirmed and not t.lost), key=lambda t: t.track_id)

    def all_confirmed(self) -> list[TrackState]:
        """Every confirmed track ever (current and finished), by id."""
        return sorted([t for t in self.tracks + self.finished if t.confirmed], key=lambda t: t.track_id)

    def _match(self, tracks: list[TrackState], boxes: np.ndarray, det_idx: list[int], threshold: float,
               ) -> tuple[list[tuple[TrackState, int]], list[TrackState], list[int]]:
        if not tracks or not det_idx:
            return [], list(tracks), list(det_idx)
        dets = boxes[det_idx]
        iou = iou_matrix(np.stack([t.box for t in tracks]), dets)
        for i, t in enumerate(tracks):
            if t.lost:  # it may have stopped where it was last seen, or kept moving: take the better
                iou[i] = np.maximum(iou[i], iou_matrix(t.last_box[None], dets)[0])
        pairs = greedy_match(iou, threshold)
        matched = [(tracks[r], det_idx[c]) for r, c in pairs]
        mr = {r for r, _ in pairs}
        mc = {c for _, c in pairs}
        return (matched, [t for i, t in enumerate(tracks) if i not in mr],
                [d for j, d in enumerate(det_idx) if j not in mc])

    def update(self, frame: int, boxes: np.ndarray, scores: np.ndarray) -> list[tuple[TrackState, int]]:
        """Associate this frame's detections; returns (track, detection index) for every detection used.

        New tentative tracks are included (the caller may want their evidence before they are confirmed).
        """
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        first = self._updates == 0
        self._updates += 1
        high = [i for i in range(len(scores)) if scores[i] >= self.high]
        low = [i for i in range(len(scores)) if self.low <= scores[i] < self.high]
        confirmed = [t for t in self.tracks if t.confirmed]
        tentative = [t for t in self.tracks if not t.confirmed]

        m1, rest, high_left = self._match(confirmed, boxes, high, self.match_iou)
        m2, rest, _ = self._match([t for t in rest if not t.lost], boxes, low, self.low_match_iou)
        m3, tentative_left, high_left = self._match(tentative, boxes, high_left, self.match_iou)
        matched = m1 + m2 + m3
        for t, d in matched:
            t.kalman.update(boxes[d])
            t.last_box, t.last_score, t.last_frame = boxes[d].copy(), float(scores[d]), frame
            t.lost = False
            t.hits += 1
        for t in rest:
            t.lost = True
        dropped = set(tentative_left)
        for t in self.tracks:
            if t.confirmed and t.lost and frame - t.last_frame > self.max_lost:
                dropped.add(t)
        self.finished += [t for t in dropped if t.confirmed]
        self.tracks = [t for t in self.tracks if t not in dropped]
        for d in high_left:
            t = TrackState(key=self._next_key, kalman=BoxKalman(boxes[d]), first_frame=frame, last_frame=frame,
                           last_box=boxes[d].copy(), last_score=float(scores[d]))
            self._next_key += 1
            self.tracks.append(t)
            matched.append((t, d))
        for t in self.tracks:
            if not t.confirmed and (t.hits >= self.min_hits or first):
                t.track_id = self._next_id
                self._next_id += 1
        return matched
