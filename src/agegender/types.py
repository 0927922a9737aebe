"""Result types: small, typed, JSON-serialisable dataclasses."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

#: Adience's eight age groups (inclusive year ranges); 60+ is open-ended (capped at 100).
ADIENCE_GROUPS: tuple[tuple[int, int], ...] = (
    (0, 2), (4, 6), (8, 12), (15, 20), (25, 32), (38, 43), (48, 53), (60, 100),
)
ADIENCE_LABELS: tuple[str, ...] = ("0-2", "4-6", "8-12", "15-20", "25-32", "38-43", "48-53", "60+")


def whole_years(age: float) -> int:
    """An age as shown, in whole years (half up: 32.5 -> 33)."""
    return int(math.floor(age + 0.5))


def age_group_of(age: float) -> str:
    """The Adience group of an age: the group whose range holds it in whole years, else (Adience leaves
    gaps: 3, 7, 13-14, 21-24, 33-37, 44-47, 54-59) the nearest group, ties (3, 7, 35) to the younger.

    The rule :func:`agegender.eval.metrics.age_to_group` scores predictions with, and the one
    :func:`agegender.postprocess.group_probabilities` sums the gap years with.
    """
    y = whole_years(age)
    dists = [max(lo - y, 0, y - hi) for lo, hi in ADIENCE_GROUPS]
    return ADIENCE_LABELS[dists.index(min(dists))]


def group_holds(group: str, age: float) -> bool:
    """Whether the Adience group ``group`` (a label of :data:`ADIENCE_LABELS`) holds ``age`` in whole years."""
    if group not in ADIENCE_LABELS:
        return False
    lo, hi = ADIENCE_GROUPS[ADIENCE_LABELS.index(group)]
    return lo <= whole_years(age) <= hi


def group_text(age: float, group: str) -> str:
    """The group as shown beside the age: ``group 25-32`` when it holds the age, else ``nearest group 60+``
    (an age in one of Adience's gaps, e.g. 57), so the two never contradict each other."""
    gap = group in ADIENCE_LABELS and not group_holds(group, age)
    return f"nearest group {group}" if gap else f"group {group}"


@dataclass(frozen=True)
class Detection:
    """One detected face in image coordinates."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float
    landmarks: np.ndarray  # (5, 2): left eye, right eye, nose, left mouth, right mouth (image left/right)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def scaled(self, factor: float) -> Detection:
        """This face in the pixels of a copy of its image ``factor`` times its size."""
        return Detection(box=tuple(float(v) * factor for v in self.box), score=self.score,  # type: ignore[arg-type]
                         landmarks=(self.landmarks * np.float32(factor)).astype(np.float32))


@dataclass(frozen=True)
class AgeGender:
    """What the network says about one aligned face."""

    gender: str  # "female" or "male"
    p_female: float
    age: float  # expected age in years
    age_low: float  # 10th percentile of the predicted age distribution
    age_high: float  # 90th percentile
    age_group: str  # Adience group of ``age`` (holding it, else the nearest): see :func:`age_group_of`
    age_group_probs: dict[str, float]  # probability of each group (the most probable may be another one)

    @property
    def gender_probability(self) -> float:
        """Probability of the predicted gender."""
        return self.p_female if self.gender == "female" else 1.0 - self.p_female


@dataclass(frozen=True)
class Face:
    """One face in a photo: where it is and what the model says about it."""

    box: tuple[float, float, float, float]
    det_score: float
    landmarks: tuple[tuple[float, float], ...]
    gender: str
    p_female: float
    age: float
    age_low: float
    age_high: float
    age_group: str
    age_group_probs: dict[str, float]
    attention: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def gender_probability(self) -> float:
        return self.p_female if self.gender == "female" else 1.0 - self.p_female

    @property
    def group_text(self) -> str:
        """``group 25-32``, or ``nearest group 60+`` for an age in one of Adience's gaps (:func:`group_text`)."""
        return group_text(self.age, self.age_group)

    def scaled(self, factor: float) -> Face:
        """The same face with its box and landmarks multiplied by ``factor`` (e.g. from a reduced decode
        back to the full-size image's pixels)."""
        return replace(self, box=tuple(float(v) * factor for v in self.box),  # type: ignore[arg-type]
                       landmarks=tuple((float(x) * factor, float(y) * factor) for x, y in self.landmarks))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("attention", None)
        d["box"] = [round(float(v), 1) for v in self.box]
        d["landmarks"] = [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks]
        for k in ("det_score", "p_female", "age", "age_low", "age_high"):
            d[k] = round(float(d[k]), 4)
        d["age_group_probs"] = {k: round(float(v), 4) for k, v in self.age_group_probs.items()}
        return d

    def __str__(self) -> str:
        x1, y1, x2, y2 = (int(round(v)) for v in self.box)
        return (
            f"{self.gender} ({self.gender_probability:.0%}), age {whole_years(self.age)} "
            f"[{self.age_low:.0f}-{self.age_high:.0f}], {self.group_text} at ({x1},{y1})-({x2},{y2})"
        )


@dataclass(frozen=True)
class Prediction:
    """All faces found in one image, largest first."""

    source: str
    width: int
    height: int
    faces: tuple[Face, ...]
    error: str | None = None  # set when the input could not be processed (then faces is empty)

    @property
    def ok(self) -> bool:
        return self.error is None

    def __len__(self) -> int:
        return len(self.faces)

    def __iter__(self):
        return iter(self.faces)

    def __getitem__(self, i: int) -> Face:
        return self.faces[i]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "width": self.width,
            "height": self.height,
            "faces": [f.to_dict() for f in self.faces],
            "error": self.error,
        }

    def __str__(self) -> str:
        if self.error:
            return f"{self.source}: error: {self.error}"
        if not self.faces:
            return f"{self.source}: no face found"
        lines = [f"{self.source}: {len(self.faces)} face(s)"]
        lines += [f"  [{i}] {f}" for i, f in enumerate(self.faces)]
        return "\n".join(lines)
