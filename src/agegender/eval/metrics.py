"""Metrics for age and gender prediction (numpy only).

Conventions:

* Every function takes predictions first, then ground truth (``pred, true``).
* Unknown labels are ignored: true ages that are NaN, true groups and true genders that are negative
  (``-1``, as :attr:`Record.gender_index` and :func:`age_to_group` give for unknowns).
* Gender is coded 0 male, 1 female (:attr:`Record.gender_index`).
* A metric over no usable sample is NaN, never an error, so breakdowns with empty cells still work.

Age groups (:func:`age_to_group`): an age is first rounded to whole years (half up: 32.5 -> 33), since
the labels are whole years and a prediction estimates one; it then goes to the group whose inclusive range
contains it, else (Adience has gaps: 3, 7, 13-14, 21-24, 33-37, 44-47, 54-59) to the group whose range is
nearest, ties (3, 7, 35) going to the younger group. Ages below the first or above the last range go to
the first or last group. This matches :func:`agegender.data.adience.map_age_range` for whole-year ages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..types import ADIENCE_GROUPS, ADIENCE_LABELS

ArrayLike = Sequence[float] | np.ndarray


def _vec(x: Any, dtype: type = float) -> np.ndarray:
    return np.asarray(x, dtype=dtype).reshape(-1)


def _pair(pred: Any, true: Any, dtype: type = float) -> tuple[np.ndarray, np.ndarray]:
    p, t = _vec(pred, dtype), _vec(true, dtype)
    if p.shape != t.shape:
        raise ValueError(f"pred has {p.size} entries but true has {t.size}")
    return p, t


# --------------------------------------------------------------------------------------------- age


@dataclass(frozen=True)
class AgeMetrics:
    """Mean absolute error (years) and cumulative score CS@k over ``n`` samples with a known age."""

    mae: float
    cs: float
    k: float
    n: int


def _known_age(pred: Any, true: Any) -> tuple[np.ndarray, np.ndarray]:
    p, t = _pair(pred, true)
    keep = np.isfinite(t)
    return p[keep], t[keep]


def age_mae(pred: ArrayLike, true: ArrayLike) -> float:
    """Mean absolute error in years, over samples whose true age is known (not NaN)."""
    p, t = _known_age(pred, true)
    return float(np.mean(np.abs(p - t))) if t.size else float("nan")


def cumulative_score(pred: ArrayLike, true: ArrayLike, k: float = 5.0) -> float:
    """CS@k: fraction of samples (with a known true age) whose absolute error is at most ``k`` years."""
    p, t = _known_age(pred, true)
    return float(np.mean(np.abs(p - t) <= k)) if t.size else float("nan")


def age_metrics(pred: ArrayLike, true: ArrayLike, k: float = 5.0) -> AgeMetrics:
    """MAE and CS@k together."""
    _, t = _known_age(pred, true)
    return AgeMetrics(mae=age_mae(pred, true), cs=cumulative_score(pred, true, k), k=float(k), n=int(t.size))


# ------------------------------------------------------------------------------------------ groups


@dataclass(frozen=True)
class GroupScheme:
    """Named age groups: inclusive ``(lo, hi)`` year ranges in increasing order, with labels."""

    name: str
    ranges: tuple[tuple[float, float], ...]
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.ranges) != len(self.labels) or not self.ranges:
            raise ValueError(f"{self.name}: need one label per range")
        for (lo, hi), (next_lo, _) in zip(self.ranges, self.ranges[1:], strict=False):
            if not lo <= hi < next_lo:
                raise ValueError(f"{self.name}: ranges must be increasing and disjoint")

    def __len__(self) -> int:
        return len(self.ranges)

    def index(self, ages: ArrayLike) -> np.ndarray:
        """Group index of each age (see :func:`age_to_group`)."""
        return age_to_group(ages, self)


ADIENCE8 = GroupScheme("adience8", tuple((float(a), float(b)) for a, b in ADIENCE_GROUPS), ADIENCE_LABELS)
FAIRFACE9 = GroupScheme(
    "fairface9",
    ((0, 2), (3, 9), (10, 19), (20, 29), (30, 39), (40, 49), (50, 59), (60, 69), (70, 100)),
    ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+"),
)


def age_to_group(ages: ArrayLike, scheme: GroupScheme = ADIENCE8) -> np.ndarray:
    """Group index (int) per age: round to whole years, then the containing or nearest range.

    Ties between two ranges go to the younger one; NaN ages give -1 (unknown).
    """
    a = _vec(ages)
    out = np.full(a.shape, -1, dtype=np.int64)
    known = np.isfinite(a)
    if not known.any():
        return out
    whole = np.floor(a[known] + 0.5)[:, None]
    lo = np.array([r[0] for r in scheme.ranges], dtype=float)[None, :]
    hi = np.array([r[1] for r in scheme.ranges], dtype=float)[None, :]
    dist = np.maximum(np.maximum(lo - whole, 0.0), whole - hi)
    out[known] = np.argmin(dist, axis=1)  # argmin keeps the first (younger) group on ties
    return out


@dataclass(frozen=True)
class GroupAccuracy:
    """Exact and 1-off (adjacent group counts as right) accuracy over ``n`` samples with a known group."""

    exact: float
    one_off: float
    n: int


def _known_class(pred: Any, true: Any) -> tuple[np.ndarray, np.ndarray]:
    p, t = _pair(pred, true, dtype=np.int64)
    keep = t >= 0
    return p[keep], t[keep]


def exact_accuracy(pred: ArrayLike, true: ArrayLike) -> float:
    """Fraction of predicted group (or class) indices equal to the true one; true < 0 ignored."""
    p, t = _known_class(pred, true)
    return float(np.mean(p == t)) if t.size else float("nan")


def one_off_accuracy(pred: ArrayLike, true: ArrayLike) -> float:
    """Fraction of predicted group indices at most one group away from the true one; true < 0 ignored."""
    p, t = _known_class(pred, true)
    return float(np.mean(np.abs(p - t) <= 1)) if t.size else float("nan")


def group_accuracy(pred: ArrayLike, true: ArrayLike) -> GroupAccuracy:
    """Exact and 1-off group accuracy together."""
    _, t = _known_class(pred, true)
    exact, one_off = exact_accuracy(pred, true), one_off_accuracy(pred, true)
    return GroupAccuracy(exact=exact, one_off=one_off, n=int(t.size))


# ------------------------------------------------------------------------------------------ gender


@dataclass(frozen=True)
class GenderMetrics:
    """Gender accuracy and balanced accuracy over ``n`` samples; ``n_ignored`` had an unknown label."""

    accuracy: float
    balanced_accuracy: float
    n: int
    n_ignored: int


def gender_accuracy(pred: ArrayLike, true: ArrayLike) -> float:
    """Fraction right among samples with a known gender (true 0 male / 1 female; -1 ignored)."""
    return exact_accuracy(pred, true)


def balanced_accuracy(pred: ArrayLike, true: ArrayLike) -> float:
    """Mean over the classes present in ``true`` of the per-class recall; true < 0 ignored."""
    p, t = _known_class(pred, true)
    if not t.size:
        return float("nan")
    return float(np.mean([np.mean(p[t == c] == c) for c in np.unique(t)]))


def gender_metrics(pred: ArrayLike, true: ArrayLike) -> GenderMetrics:
    """Accuracy and balanced accuracy together, with counts."""
    _, t = _pair(pred, true, dtype=np.int64)
    n = int(np.sum(t >= 0))
    return GenderMetrics(
        accuracy=gender_accuracy(pred, true),
        balanced_accuracy=balanced_accuracy(pred, true),
        n=n,
        n_ignored=int(t.size - n),
    )


# --------------------------------------------------------------------------------------- confusion


@dataclass(frozen=True)
class ConfusionMatrix:
    """``counts[i, j]`` = samples of true class ``i`` predicted as ``j``."""

    counts: np.ndarray
    labels: tuple[str, ...]

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.counts) / self.total) if self.total else float("nan")

    def recall(self) -> np.ndarray:
        """Per true class: diagonal / row sum (NaN for classes with no sample)."""
        rows = self.counts.sum(axis=1).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.diag(self.counts) / rows

    def precision(self) -> np.ndarray:
        """Per predicted class: diagonal / column sum (NaN for classes never predicted)."""
        cols = self.counts.sum(axis=0).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.diag(self.counts) / cols

    def normalized(self) -> np.ndarray:
        """Rows divided by their sums (rows of unseen classes stay 0)."""
        rows = self.counts.sum(axis=1, keepdims=True).astype(float)
        return np.divide(self.counts, rows, out=np.zeros(self.counts.shape), where=rows > 0)


def confusion_matrix(
    pred: ArrayLike, true: ArrayLike, n_classes: int | None = None, labels: Sequence[str] | None = None
) -> ConfusionMatrix:
    """Confusion matrix (rows true, columns predicted); samples with true < 0 are ignored.

    ``n_classes`` defaults to ``len(labels)`` or else to the largest index seen plus one.
    """
    p, t = _known_class(pred, true)
    if n_classes is None:
        n_classes = len(labels) if labels is not None else int(max(p.max(initial=-1), t.max(initial=-1)) + 1)
    if labels is None:
        labels = [str(i) for i in range(n_classes)]
    if len(labels) != n_classes:
        raise ValueError(f"{len(labels)} labels for {n_classes} classes")
    if p.size and (p.min() < 0 or p.max() >= n_classes or t.max() >= n_classes):
        raise ValueError(f"class index outside 0..{n_classes - 1}")
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (t, p), 1)
    return ConfusionMatrix(counts=counts, labels=tuple(labels))


# ------------------------------------------------------------------------------------------- folds


@dataclass(frozen=True)
class MeanStd:
    """Mean and standard deviation of one metric over folds (``ddof`` as used)."""

    mean: float
    std: float
    n: int
    values: tuple[float, ...]
    ddof: int = 1

    def __str__(self) -> str:
        return f"{self.mean:.4g} ± {self.std:.2g} (n={self.n})"


def mean_std(values: ArrayLike, ddof: int = 1) -> MeanStd:
    """Mean ± std over folds; ``ddof=1`` (sample std) by default, NaN std when ``n <= ddof``."""
    v = _vec(values)
    mean = float(np.mean(v)) if v.size else float("nan")
    std = float(np.std(v, ddof=ddof)) if v.size > ddof else float("nan")
    return MeanStd(mean=mean, std=std, n=int(v.size), values=tuple(float(x) for x in v), ddof=ddof)


# --------------------------------------------------------------------------------------- breakdown


@dataclass
class BreakdownRow:
    """The value of a metric on the samples sharing one combination of key values."""

    keys: dict[str, str]
    n: int
    value: float


def _natural(text: str) -> tuple[Any, ...]:
    """Sort key putting "3-9" before "10-19" (numbers compared as numbers)."""
    parts = re.split(r"(\d+(?:\.\d+)?)", text)
    return tuple((0, float(s), "") if i % 2 else (1, 0.0, s) for i, s in enumerate(parts) if s)


def breakdown(
    metric: Callable[..., float],
    *arrays: ArrayLike,
    by: Mapping[str, Sequence[Any]],
    min_count: int = 1,
    include_all: bool = False,
) -> list[BreakdownRow]:
    """``metric(*arrays)`` on each subset of samples sharing the same values in the ``by`` columns.

    E.g. ``breakdown(age_mae, pred, true, by={"gender": g, "band": band, "race": race})``. Rows come in
    natural sort order of their key values; combinations with fewer than ``min_count`` samples are left
    out; ``include_all`` appends a row over every sample with all keys set to ``"all"``.
    """
    if not by:
        raise ValueError("breakdown needs at least one key column")
    data = [np.asarray(a) for a in arrays]
    n = len(data[0]) if data else len(next(iter(by.values())))
    cols = {name: [str(v) for v in values] for name, values in by.items()}
    for name, values in [*cols.items(), *((f"array {i}", d) for i, d in enumerate(data))]:
        if len(values) != n:
            raise ValueError(f"{name} has {len(values)} entries, expected {n}")
    combos: dict[tuple[str, ...], list[int]] = {}
    for i, key in enumerate(zip(*cols.values(), strict=True)):
        combos.setdefault(key, []).append(i)
    rows = []
    for key in sorted(combos, key=lambda k: tuple(_natural(s) for s in k)):
        idx = np.asarray(combos[key])
        if idx.size < min_count:
            continue
        value = float(metric(*(d[idx] for d in data)))
        rows.append(BreakdownRow(keys=dict(zip(cols, key, strict=True)), n=int(idx.size), value=value))
    if include_all:
        value = float(metric(*data))
        rows.append(BreakdownRow(keys={name: "all" for name in cols}, n=n, value=value))
    return rows


# ------------------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class CalibrationBin:
    """One reliability-diagram bin ``(lo, hi]`` (the first also holds 0): mean confidence and accuracy."""

    lo: float
    hi: float
    confidence: float
    accuracy: float
    count: int


@dataclass(frozen=True)
class Calibration:
    """Expected (count-weighted) and maximum calibration error with the per-bin data."""

    ece: float
    mce: float
    n: int
    bins: tuple[CalibrationBin, ...] = field(repr=False)


def calibration(confidence: ArrayLike, correct: ArrayLike, n_bins: int = 10) -> Calibration:
    """ECE over ``n_bins`` equal-width confidence bins on [0, 1].

    ``confidence`` is the probability given to the predicted class, ``correct`` whether that prediction
    was right. ECE = sum over bins of count/n * |accuracy - mean confidence|; empty bins have NaN
    confidence/accuracy and weigh nothing.
    """
    c, ok = _pair(confidence, correct)
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    if c.size and (np.nanmin(c) < 0.0 or np.nanmax(c) > 1.0 or np.isnan(c).any()):
        raise ValueError("confidences must lie in [0, 1]")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, c, side="left") - 1, 0, n_bins - 1)
    bins = []
    ece, mce = 0.0, 0.0
    for b in range(n_bins):
        sel = which == b
        count = int(sel.sum())
        if count:
            conf, acc = float(c[sel].mean()), float(ok[sel].mean())
            gap = abs(acc - conf)
            ece += count / c.size * gap
            mce = max(mce, gap)
        else:
            conf = acc = float("nan")
        bins.append(CalibrationBin(float(edges[b]), float(edges[b + 1]), conf, acc, count))
    if not c.size:
        ece = mce = float("nan")
    return Calibration(ece=float(ece), mce=float(mce), n=int(c.size), bins=tuple(bins))


def expected_calibration_error(confidence: ArrayLike, correct: ArrayLike, n_bins: int = 10) -> float:
    """ECE only (see :func:`calibration`)."""
    return calibration(confidence, correct, n_bins).ece


def gender_calibration(p_female: ArrayLike, true: ArrayLike, n_bins: int = 10) -> Calibration:
    """Calibration of a binary gender classifier from P(female); true 0 male / 1 female, -1 ignored.

    The prediction is female when ``p_female >= 0.5``; its confidence is ``max(p, 1 - p)``.
    """
    p, t = _pair(p_female, true)
    keep = t >= 0
    p, t = p[keep], t[keep]
    pred = (p >= 0.5).astype(float)
    return calibration(np.maximum(p, 1.0 - p), pred == t, n_bins)
