"""Draw boxes, landmarks and labels on a copy of the image; overlay attention maps."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .types import Face

_COLORS = {"female": (230, 60, 140), "male": (40, 120, 230)}


def label(face: Face) -> str:
    g = "F" if face.gender == "female" else "M"
    return f"{g} {face.gender_probability:.0%}, {face.age:.0f} ({face.age_low:.0f}-{face.age_high:.0f})"


def draw_faces(image: np.ndarray, faces: list[Face] | tuple[Face, ...]) -> Image.Image:
    """An RGB PIL image with every face boxed and labelled."""
    img = Image.fromarray(image).convert("RGB")
    draw = ImageDraw.Draw(img)
    width = max(2, round(max(img.size) / 400))
    try:
        font = ImageFont.load_default(size=max(12, round(max(img.size) / 45)))
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    for i, f in enumerate(faces):
        color = _COLORS.get(f.gender, (255, 200, 0))
        x1, y1, x2, y2 = f.box
        draw.rectangle([x1, y1, x2, y2], outline=color, width=width)
        for x, y in f.landmarks:
            r = width
            draw.ellipse([x - r, y - r, x + r, y + r], fill=(255, 255, 0))
        text = f"{i}: {label(f)}"
        tb = draw.textbbox((0, 0), text, font=font)
        tw, th = tb[2] - tb[0], tb[3] - tb[1]
        ty = y1 - th - 6 if y1 - th - 6 >= 0 else y2 + 2
        draw.rectangle([x1, ty, x1 + tw + 6, ty + th + 6], fill=color)
        draw.text((x1 + 3, ty + 1), text, fill=(255, 255, 255), font=font)
    return img


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
