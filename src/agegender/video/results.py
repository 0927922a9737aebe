"""What video analysis returns: per-frame tracked faces and one summary per track (typed, frozen)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..types import AgeGender, group_text, whole_years


@dataclass(frozen=True)
class TrackedFace:
    """One face in one frame, with its track's smoothed label (the evidence of every frame so far).

    ``detected`` is False on frames between detections (``every > 1``): the box is then the tracker's
    prediction and ``det_score`` and ``frame_estimate`` are ``None``. ``frame_estimate`` is what the
    model says on this frame alone (the unsmoothed output, for comparison).
    """

    track_id: int
    box: tuple[float, float, float, float]
    detected: bool
    det_score: float | None
    gender: str
    p_female: float
    age: float
    age_low: float
    age_high: float
    age_group: str
    frame_estimate: AgeGender | None = None

    @property
    def gender_probability(self) -> float:
        return self.p_female if self.gender == "female" else 1.0 - self.p_female

    def __str__(self) -> str:
        x1, y1, x2, y2 = (int(round(v)) for v in self.box)
        return (f"#{self.track_id} {self.gender} ({self.gender_probability:.0%}), age {whole_years(self.age)} "
                f"[{self.age_low:.0f}-{self.age_high:.0f}] at ({x1},{y1})-({x2},{y2})")


@dataclass(frozen=True)
class FrameResult:
    """The tracked faces of one frame. ``detected``: the detector ran on this frame."""

    index: int
    time: float  # seconds from the start (frame index / frames per second)
    width: int
    height: int
    detected: bool
    faces: tuple[TrackedFace, ...]

    def __len__(self) -> int:
        return len(self.faces)

    def __iter__(self):
        return iter(self.faces)


@dataclass(frozen=True)
class Track:
    """One person followed through the video, with the label settled from all of its frames."""

    track_id: int
    first_frame: int
    last_frame: int  # the last frame it was detected on
    first_time: float
    last_time: float
    frames_seen: int  # frames on which the detector found it (and the model ran)
    gender: str
    p_female: float
    age: float
    age_low: float
    age_high: float
    age_group: str
    age_group_probs: dict[str, float]

    @property
    def gender_probability(self) -> float:
        return self.p_female if self.gender == "female" else 1.0 - self.p_female

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("first_time", "last_time", "p_female", "age", "age_low", "age_high"):
            d[k] = round(float(d[k]), 4)
        d["age_group_probs"] = {k: round(float(v), 4) for k, v in self.age_group_probs.items()}
        return d

    def __str__(self) -> str:
        return (f"track {self.track_id}: frames {self.first_frame}-{self.last_frame} "
                f"({self.first_time:.2f}-{self.last_time:.2f} s), seen {self.frames_seen}, {self.gender} "
                f"({self.gender_probability:.0%}), age {whole_years(self.age)} "
                f"[{self.age_low:.0f}-{self.age_high:.0f}], {group_text(self.age, self.age_group)}")
