"""Draw boxes, landmarks and labels on a copy of the image; overlay attention maps.

Labels are placed by one function, :func:`place_labels`, for annotated images (:func:`draw_faces`),
video frames (:mod:`agegender.video.writer`) and the web page (the API returns each face's label box,
:func:`layout_labels`, and the page draws it where it says). A label never overlaps another label nor
leaves the image; it sits above its face when there is room, else as near to it as possible, avoiding
the faces. Sizes follow the image: the font from its size, the lines and landmark dots from the face's.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .types import Face, whole_years

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]  # x1, y1, x2, y2
RGB = tuple[int, int, int]

_COLORS: dict[str, RGB] = {"female": (230, 60, 140), "male": (40, 120, 230)}
_OTHER: RGB = (255, 200, 0)
MIN_FONT_PX = 8  # below this a label is not readable: it is left out instead
_FACE_PENALTY = 6.0  # cost, in label heights, of a label covering a whole face


def color_of(gender: str) -> RGB:
    return _COLORS.get(gender, _OTHER)


class Labelled(Protocol):
    """What a label shows: a :class:`Face`, a video's tracked face, the API's face."""

    box: tuple[float, float, float, float]
    gender: str
    age: float
    age_low: float
    age_high: float

    @property
    def gender_probability(self) -> float: ...


def label_parts(face: Labelled, prefix: str = "") -> tuple[str, str]:
    """The label's two halves (who, how old), shown on one line or, where room is short, on two;
    ``prefix`` (e.g. ``"0: "``) goes before the first."""
    g = "F" if face.gender == "female" else "M"
    age = f"{whole_years(face.age)} ({face.age_low:.0f}-{face.age_high:.0f})"
    return f"{prefix}{g} {face.gender_probability:.0%}", age


def label(face: Labelled) -> str:
    return ", ".join(label_parts(face))


# -- placement (geometry only: the same for every renderer) -------------------------------------------------


def _clip(v: np.ndarray, hi: float) -> np.ndarray:
    return np.clip(v, 0.0, max(hi, 0.0))


def _overlap_area(x: np.ndarray, y: np.ndarray, w: float, h: float, rects: np.ndarray) -> np.ndarray:
    """Area each candidate (x, y, w, h) shares with each rect, summed over the rects."""
    if len(rects) == 0:
        return np.zeros(len(x))
    ox = np.minimum(x[:, None] + w, rects[None, :, 2]) - np.maximum(x[:, None], rects[None, :, 0])
    oy = np.minimum(y[:, None] + h, rects[None, :, 3]) - np.maximum(y[:, None], rects[None, :, 1])
    return (np.clip(ox, 0, None) * np.clip(oy, 0, None)).sum(1)


def _collides(x: np.ndarray, y: np.ndarray, w: float, h: float, rects: np.ndarray, gap: float) -> np.ndarray:
    """Whether each candidate comes closer than ``gap`` to any of the rects."""
    if len(rects) == 0:
        return np.zeros(len(x), bool)
    return ((x[:, None] < rects[None, :, 2] + gap) & (rects[None, :, 0] < x[:, None] + w + gap)
            & (y[:, None] < rects[None, :, 3] + gap) & (rects[None, :, 1] < y[:, None] + h + gap)).any(1)


def _place_one(face: Box, w: float, h: float, width: int, height: int, placed: np.ndarray,
               faces: np.ndarray, gap: float) -> tuple[Box, float] | None:
    """The best free spot for one label (see :func:`place_labels`) and its cost (in label heights:
    how far it is from the spot above its face, plus how much face it covers), or None."""
    x1, y1, x2, y2 = face
    fx = [x1, x2 - w, (x1 + x2 - w) / 2, 0.0, width - w]
    fy = [y1 - gap - h, y2 + gap, y1 + gap, y2 - gap - h, 0.0, height - h]
    if len(placed):  # beside each placed label: with the image's edges, where any free spot can slide to
        fx += list(placed[:, 2] + gap) + list(placed[:, 0] - gap - w)
        fy += list(placed[:, 3] + gap) + list(placed[:, 1] - gap - h)
    xs, ys = np.unique(_clip(np.asarray(fx), width - w)), np.unique(_clip(np.asarray(fy), height - h))
    x, y = (a.ravel() for a in np.meshgrid(xs, ys))
    free = ~_collides(x, y, w, h, placed, gap)
    if not free.any():
        return None
    x, y = x[free], y[free]
    px = float(_clip(np.asarray(x1), width - w))
    above = y1 - gap - h
    py = above if above >= 0 else min(y2 + gap, height - h)
    cost = 2.0 * np.abs(x - px) + np.abs(y - py)  # keep to the face's column first: it names the face
    cost += _FACE_PENALTY * h * _overlap_area(x, y, w, h, faces) / (w * h)
    k = int(np.argmin(cost))
    return (float(x[k]), float(y[k]), float(x[k] + w), float(y[k] + h)), float(cost[k]) / h


def _place(faces: Sequence[Box], sizes: Sequence[tuple[float, float]], width: int, height: int,
           gap: float) -> tuple[list[Box | None], float]:
    """:func:`place_labels`, and the mean cost of the placed labels (in label heights)."""
    rects = np.asarray([tuple(map(float, b)) for b in faces], dtype=np.float64).reshape(-1, 4)
    out: list[Box | None] = []
    placed: list[Box] = []
    costs: list[float] = []
    for box, (w, h) in zip(rects, sizes):
        found = None
        if 0 < w <= width and 0 < h <= height:
            found = _place_one(tuple(box), float(w), float(h), width, height,
                               np.asarray(placed, np.float64).reshape(-1, 4), rects, gap)
        if found is not None:
            placed.append(found[0])
            costs.append(found[1])
        out.append(None if found is None else found[0])
    return out, (sum(costs) / len(costs) if costs else 0.0)


def place_labels(faces: Sequence[Box], sizes: Sequence[tuple[float, float]], width: int, height: int,
                 gap: float = 2.0) -> list[Box | None]:
    """Boxes for the faces' labels (``sizes``: width, height of each), in the order given (earlier faces
    get the better spots).

    Every box lies inside the ``width`` x ``height`` image and keeps ``gap`` pixels from every other;
    each is as near as possible to the spot just above its face (below it at the image's top edge),
    staying in the face's column before moving sideways and avoiding covering faces. A label that
    cannot fit anywhere (too big, or the image is full) gets None. Searching only the spots beside
    the placed labels and the edges is complete: any free spot slides up and left until it touches one.
    """
    return _place(faces, sizes, width, height, gap)[0]


# -- layout with a font (Pillow's; the page draws the same boxes) ----------------------------------------------


@dataclass(frozen=True)
class LabelLine:
    text: str
    x: float  # left end of the text, image pixels
    y: float  # baseline
    width: float  # the text's width in the font used


@dataclass(frozen=True)
class Label:
    """A placed label: its box (image pixels) and its lines, drawn in a font of ``font_size`` pixels."""

    box: Box
    font_size: int
    lines: tuple[LabelLine, ...]


def font_size_for(width: int, height: int) -> int:
    """The labels' font size for an image: about a 40th of its geometric mean side, at least 10 px."""
    return max(10, round(math.sqrt(max(width, 1) * max(height, 1)) / 40))


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def _metrics(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, size: int) -> tuple[float, float]:
    """(ascent, line height) of the font."""
    if hasattr(font, "getmetrics"):
        ascent, descent = font.getmetrics()
        return float(ascent), float(ascent + descent)
    return 0.8 * size, 1.2 * size


def _text_width(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str) -> float:
    return float(font.getlength(text)) if hasattr(font, "getlength") else float(font.getbbox(text)[2])


def _attempts(size: int) -> list[tuple[int, int, float]]:
    """(font size, lines, handicap) to try: each size on one line and on two, down to MIN_FONT_PX; the
    handicap (in label heights of displacement) is what two lines or a smaller font must save to win."""
    sizes = [size]
    while sizes[-1] > MIN_FONT_PX:
        sizes.append(max(MIN_FONT_PX, math.floor(sizes[-1] * 0.8)))
    return [(s, n, 1.0 * k + 0.3 * (n - 1)) for k, s in enumerate(sizes) for n in (1, 2)]


def _lines_at(parts: tuple[str, str], n: int, box: Box, size: int) -> tuple[LabelLine, ...]:
    font = _font(size)
    ascent, line_h = _metrics(font, size)
    pad = max(1.0, round(size * 0.2))
    texts = [", ".join(parts)] if n == 1 else list(parts)
    return tuple(LabelLine(t, box[0] + pad, box[1] + pad + ascent + k * line_h, _text_width(font, t))
                 for k, t in enumerate(texts))


def _size_at(parts: tuple[str, str], n: int, size: int) -> tuple[float, float]:
    font = _font(size)
    _, line_h = _metrics(font, size)
    pad = max(1.0, round(size * 0.2))
    texts = [", ".join(parts)] if n == 1 else list(parts)
    return math.ceil(max(_text_width(font, t) for t in texts) + 2 * pad), math.ceil(n * line_h + 2 * pad)


def layout_labels(boxes: Sequence[Box], parts: Sequence[tuple[str, str]], width: int, height: int,
                  font_size: int | None = None) -> list[Label | None]:
    """Every face's label, placed (:func:`place_labels`) and sized for this image.

    The font is :func:`font_size_for` the image. Each label goes on one line or on two, in that font or
    smaller ones (to ``MIN_FONT_PX``): the layout kept is the one that places the most labels and then
    keeps them nearest their faces, a smaller font or a second line having to earn its place
    (:func:`_attempts`). Labels that fit nowhere are None (their faces keep their boxes). One font size
    and one line count for the whole image.
    """
    if not boxes:
        return []
    best: tuple[int, float] = (-1, math.inf)  # (labels placed, score)
    chosen: list[Label | None] = [None] * len(boxes)
    for size, n, handicap in _attempts(font_size or font_size_for(width, height)):
        if best[0] == len(boxes) and handicap >= best[1]:
            break  # every label placed, and nothing later can do better (handicaps only grow)
        gap = max(1.0, round(size * 0.15))
        spots, cost = _place(boxes, [_size_at(p, n, size) for p in parts], width, height, gap)
        score = (sum(s is not None for s in spots), cost + handicap)
        if score[0] > best[0] or (score[0] == best[0] and score[1] < best[1]):
            best = score
            chosen = [None if s is None else Label(s, size, _lines_at(p, n, s, size)) for s, p in zip(spots, parts)]
    if any(lab is None for lab in chosen):
        log.debug("%d of %d labels left out: no room for them", sum(lab is None for lab in chosen), len(chosen))
    return chosen


def face_labels(faces: Sequence[Labelled], width: int, height: int) -> list[Label | None]:
    """:func:`layout_labels` of a photo's faces, numbered from 0 in the order given."""
    return layout_labels([f.box for f in faces], [label_parts(f, f"{i}: ") for i, f in enumerate(faces)],
                         width, height)


# -- drawing --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mark:
    """What to draw for one face: its box, colour, landmarks (may be empty) and label (None: none)."""

    box: Box
    color: RGB
    label: Label | None
    landmarks: Sequence[tuple[float, float]] = ()
    thin: bool = False  # a box the tracker predicted, not one the detector found


def line_width_for(width: int, height: int) -> int:
    return max(2, round(max(width, height) / 400))


def _face_line(box: Box, image_line: int) -> tuple[int, float]:
    """(box line width, landmark dot radius) for a face: thinner lines and smaller dots on small faces,
    no dots under 50 px, so that they never hide the face."""
    side = max(0.0, min(box[2] - box[0], box[3] - box[1]))
    lw = int(max(1, min(image_line, round(side / 25))))
    r = min(float(image_line), side / 50)
    return lw, (r if r >= 1.0 else 0.0)


def draw_marks(img: Image.Image, marks: Sequence[Mark]) -> Image.Image:
    """Draw boxes, landmarks, then labels (on top) on ``img`` in place; returns it."""
    draw = ImageDraw.Draw(img)
    image_line = line_width_for(*img.size)
    for m in marks:
        lw, r = _face_line(m.box, image_line)
        draw.rectangle(list(m.box), outline=m.color, width=max(1, lw // 2) if m.thin else lw)
        for x, y in m.landmarks if r else ():
            if math.isfinite(x) and math.isfinite(y):
                draw.ellipse([x - r, y - r, x + r, y + r], fill=(255, 255, 0))
    for m in marks:
        if m.label is None:
            continue
        _leader(draw, m)
        draw.rectangle(list(m.label.box), fill=m.color)
        font = _font(m.label.font_size)
        ascent = 0.0 if isinstance(font, ImageFont.FreeTypeFont) else _metrics(font, m.label.font_size)[0]
        anchor = "ls" if isinstance(font, ImageFont.FreeTypeFont) else None  # bitmap fonts: top-left only
        for line in m.label.lines:
            draw.text((line.x, line.y - ascent), line.text, fill=(255, 255, 255), font=font, anchor=anchor)
    return img


def _leader(draw: ImageDraw.ImageDraw, m: Mark) -> None:
    """A thin line from a label that had to move away from its face to the face's box."""
    assert m.label is not None
    lx1, ly1, lx2, ly2 = m.label.box
    x1, y1, x2, y2 = m.box
    dx = max(x1 - lx2, lx1 - x2, 0.0)
    dy = max(y1 - ly2, ly1 - y2, 0.0)
    if dx + dy <= 2 * m.label.font_size:
        return
    cx, cy = min(max((lx1 + lx2) / 2, x1), x2), min(max((ly1 + ly2) / 2, y1), y2)
    lx, ly = min(max(cx, lx1), lx2), min(max(cy, ly1), ly2)
    draw.line([(lx, ly), (cx, cy)], fill=m.color, width=max(1, m.label.font_size // 10))


def draw_faces(image: np.ndarray, faces: list[Face] | tuple[Face, ...]) -> Image.Image:
    """An RGB PIL image with every face boxed and labelled (labels numbered in the order given)."""
    img = Image.fromarray(image).convert("RGB")
    labels = face_labels(faces, img.width, img.height)
    marks = [Mark(f.box, color_of(f.gender), lab, f.landmarks) for f, lab in zip(faces, labels)]
    return draw_marks(img, marks)


def overlay_heatmap(crop: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """Blend a [0, 1] heat map (any size) over an RGB crop with a blue-to-red colour ramp (a crop with
    several views stacked on its channels: over the first one, whose coordinates the attention map has)."""
    crop = crop[..., :3]
    h, w = crop.shape[:2]
    hm = np.asarray(heat, dtype=np.float32)
    hm = (hm - hm.min()) / (float(hm.max() - hm.min()) or 1.0)
    hm_img = Image.fromarray((hm * 255).astype(np.uint8), mode="L").resize((w, h), Image.BICUBIC)
    v = np.asarray(hm_img, dtype=np.float32) / 255.0
    ramp = np.stack([np.clip(2 * v, 0, 1), np.clip(2 - np.abs(4 * v - 2), 0, 1) * 0.8, np.clip(2 - 2 * v, 0, 1)], -1)
    out = (1 - alpha) * crop.astype(np.float32) + alpha * ramp * 255.0
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))
