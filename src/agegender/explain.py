"""``agegender explain``: what the network looks at, as PNG overlays on the aligned face crops.

The attention map comes from the ONNX model itself (no PyTorch). With a training run directory,
Grad-CAM maps for the gender and the age outputs are added (needs the ``train`` extra).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .annotate import draw_faces, label, overlay_heatmap
from .io import load_image
from .types import Face

log = logging.getLogger(__name__)


def explain_image(image: str | Path, out: str | Path, model: str | Path | None = None,
                  run_dir: str | Path | None = None, max_faces: int = 4) -> list[Path]:
    """Write overlays for up to ``max_faces`` faces of ``image`` into ``out``; returns the files written."""
    from .predictor import Predictor

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    img = load_image(image)
    pred = Predictor(model=model, max_faces=max_faces)
    dets = pred.detect(img)
    if not dets:
        log.warning("%s: no face found", image)
        return []
    crops = np.stack([pred.align(img, d) for d in dets])
    results, atts = pred.predict_crops(crops)
    gradcams = None
    if run_dir is not None:
        from .train.gradcam import gradcam_maps

        gradcams = gradcam_maps(run_dir, crops[..., :3])  # a run sees one framing: the model's first
    faces = [
        Face(box=d.box, det_score=d.score, landmarks=tuple((float(x), float(y)) for x, y in d.landmarks),
             gender=r.gender, p_female=r.p_female, age=r.age, age_low=r.age_low, age_high=r.age_high,
             age_group=r.age_group, age_group_probs=r.age_group_probs)
        for d, r in zip(dets, results)
    ]
    stem = Path(str(image)).stem
    written = []
    p = out / f"{stem}_faces.png"
    draw_faces(img, faces).save(p)
    written.append(p)
    scale = 3
    for i, crop in enumerate(crops):
        panels = [Image.fromarray(crop[..., :3])]
        titles = ["aligned crop"]
        for v in range(1, crop.shape[2] // 3):  # a model with a wide view: show what it sees too
            panels.append(Image.fromarray(np.ascontiguousarray(crop[..., 3 * v : 3 * v + 3])))
            titles.append(f"view {v + 1}")
        if atts is not None:
            panels.append(overlay_heatmap(crop, atts[i]))
            titles.append("attention")
        if gradcams is not None:
            panels.append(overlay_heatmap(crop, gradcams["gender"][i]))
            titles.append("Grad-CAM gender")
            panels.append(overlay_heatmap(crop, gradcams["age"][i]))
            titles.append("Grad-CAM age")
        s = crop.shape[0] * scale
        sheet = Image.new("RGB", (s * len(panels), s + 22), (255, 255, 255))
        d = ImageDraw.Draw(sheet)
        for k, (panel, title) in enumerate(zip(panels, titles)):
            sheet.paste(panel.resize((s, s), Image.BICUBIC), (k * s, 22))
            d.text((k * s + 4, 4), title, fill=(0, 0, 0))
        sheet_path = out / f"{stem}_face{i}_explain.png"
        d.text((4, s + 22 - 12), label(faces[i]), fill=(255, 255, 0))
        sheet.save(sheet_path)
        written.append(sheet_path)
    return written
