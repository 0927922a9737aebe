"""Predictions tables: produced by our pipeline or read from any CSV (ours, or a peer's)."""

from __future__ import annotations

import csv
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError

log = logging.getLogger(__name__)


@dataclass
class PredRow:
    """One image's prediction for its main face (NaN / "" when no face was found)."""

    file: str
    age: float
    p_female: float
    gender: str  # "male" | "female" | ""
    n_faces: int
    error: str = ""


def _f(v: str | None) -> float:
    try:
        return float(v) if v not in (None, "") else math.nan
    except ValueError:
        return math.nan


def read_predictions(path: str | Path) -> list[PredRow]:
    """Read ``agegender predict --format csv`` output (face 0 kept) or a peer CSV
    (``file,age,gender,gender_prob,p_female,n_faces,...``)."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"predictions file not found: {p}")
    with open(p, newline="") as fh:
        reader = csv.DictReader(fh)
        cols = set(reader.fieldnames or [])
        if not {"file", "age"} <= cols:
            raise DatasetError(f"{p}: a predictions CSV needs at least the columns file and age")
        out: dict[str, PredRow] = {}
        for row in reader:
            if "face" in cols and row.get("face") not in ("", "0", None):
                continue  # our CSV: keep the largest face
            g = (row.get("gender") or "").strip().lower()
            g = {"f": "female", "m": "male", "woman": "female", "man": "male"}.get(g, g)
            pf = _f(row.get("p_female"))
            if math.isnan(pf) and g in ("male", "female") and row.get("gender_prob"):
                gp = _f(row.get("gender_prob"))
                pf = gp if g == "female" else 1 - gp
            n_faces = row.get("n_faces")
            age = _f(row.get("age"))
            nf = int(float(n_faces)) if n_faces not in (None, "") else (0 if math.isnan(age) else 1)
            out.setdefault(row["file"], PredRow(row["file"], age, pf, g if g in ("male", "female") else "", nf,
                                                row.get("error", "") or ""))
    return list(out.values())


def run_predictions(paths: list[str], model: str | None = None, aligned: bool = False, threads: int = 0,
                    progress: bool = True, tta: bool = False) -> list[PredRow]:
    """Our pipeline (the same as ``agegender predict``) on ``paths``; the main face of each image is
    the largest, most central one, as in the training crops."""
    from tqdm import tqdm

    from ..data.cache import pick_face
    from ..predictor import Predictor
    from ..types import Detection

    pred = Predictor(model=model, threads=threads, tta=tta)
    out = []
    bar = tqdm(total=len(paths), unit="img", desc="predicting", disable=not progress)
    for p in pred.iter_predict(paths, aligned=aligned, chunk=32):
        bar.update(1)
        if p.error or not p.faces:
            out.append(PredRow(p.source, math.nan, math.nan, "", 0, p.error or ""))
            continue
        dets = [Detection(f.box, f.det_score, None) for f in p.faces]  # type: ignore[arg-type]
        main = pick_face(dets, p.width, p.height)
        f = p.faces[dets.index(main)] if main is not None else p.faces[0]
        out.append(PredRow(p.source, f.age, f.p_female, f.gender, len(p.faces)))
    bar.close()
    return out


def write_predictions(rows: list[PredRow], path: str | Path) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "age", "gender", "p_female", "n_faces", "error"])
        for r in rows:
            w.writerow([r.file, "" if math.isnan(r.age) else f"{r.age:.2f}", r.gender,
                        "" if math.isnan(r.p_female) else f"{r.p_female:.4f}", r.n_faces, r.error])


def match_key(path: str) -> str:
    """Predictions and labels are joined on the file name (peers write base names or full paths)."""
    return os.path.basename(path)
