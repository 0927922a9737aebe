"""``agegender explain``: what the network looks at, as PNG overlays on the aligned face crops.

The attention map comes from the ONNX model itself (no PyTorch). Further maps, such as Grad-CAM from a
training run, are computed by the caller and handed in (``maps``): this module knows nothing of training.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .annotate import draw_faces, label, overlay_heatmap
from .io import load_image
from .types import Face

log = logging.getLogger(__name__)

#: named maps (N, h, w) in [0, 1] for aligned crops (N, S, S, 3), drawn as further panels
MapsFn = Callable[[np.ndarray], Mapping[str, np.ndarray]]

#: panels are drawn this many times the crop's size
SCALE = 3


def explain_image(image: str | Path, out: str | Path, model: str | Path | None = None, *,
                  maps: MapsFn | None = None, max_faces: int = 4) -> list[Path]:
    """Write overlays for up to ``max_faces`` faces of ``image`` into ``out``; returns the files written.

    ``maps``, given the faces' aligned crops (the model's first view), returns named maps to draw beside
    the attention map, e.g. ``{"Grad-CAM gender": ..., "Grad-CAM age": ...}``.
    """
    from .predictor import Predictor

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    img = load_image(image)
    predictor = Predictor(model=model, max_faces=max_faces)
    faces = predictor.predict(img).faces
    if not faces:
        log.warning("%s: no face found", image)
        return []
    crops = np.stack([predictor.crop_of(img, f) for f in faces])
    extra = dict(maps(crops[..., :3])) if maps is not None else {}
    stem = Path(str(image)).stem
    p = out / f"{stem}_faces.png"
    draw_faces(img, list(faces)).save(p)
    written = [p]
    for i, (face, crop) in enumerate(zip(faces, crops)):
        sheet_path = out / f"{stem}_face{i}_explain.png"
        _sheet(face, crop, {name: m[i] for name, m in extra.items()}).save(sheet_path)
        written.append(sheet_path)
    return written


def _sheet(face: Face, crop: np.ndarray, maps: Mapping[str, np.ndarray]) -> Image.Image:
    """One face's panels side by side: its crop (every view), its attention map and the given maps."""
    panels = [Image.fromarray(crop[..., :3])]
    titles = ["aligned crop"]
    for v in range(1, crop.shape[2] // 3):  # a model with a wide view: show what it sees too
        panels.append(Image.fromarray(np.ascontiguousarray(crop[..., 3 * v : 3 * v + 3])))
        titles.append(f"view {v + 1}")
    for title, m in ([("attention", face.attention)] if face.attention is not None else []) + list(maps.items()):
        panels.append(overlay_heatmap(crop, m))
        titles.append(title)
    s = crop.shape[0] * SCALE
    sheet = Image.new("RGB", (s * len(panels), s + 22), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    for k, (panel, title) in enumerate(zip(panels, titles)):
        sheet.paste(panel.resize((s, s), Image.BICUBIC), (k * s, 22))
        d.text((k * s + 4, 4), title, fill=(0, 0, 0))
    d.text((4, s + 22 - 12), label(face), fill=(255, 255, 0))
    return sheet
