"""Noisy gender labels, found by two unlike models that never learned from the labels they judge.

* Model A: a CNN that never saw the dataset (the shipped model, trained on UTKFace only), on the cached
  aligned crops through ONNX Runtime exactly as at inference.
* Model B: dlib's face-recognition embedding (a ResNet trained for identity, not gender) with a logistic
  regression fitted on this dataset's own labels, cross-fitted: the regression that judges an image never
  saw it (images that model A doubts are never in its training set).

A label is flagged when both models contradict it with confidence (each gives the labelled gender a
probability below ``threshold``) on a face old enough for gender to be judged from the face
(``min_age``) and not older than ``max_age``. Children are never flagged: both models are weak there, and
dropping them would only remove hard examples. Nor are the old: looking at the flags, both models call
many women over 60 with short grey hair men, so there a flag says more about the models than the label.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NoiseReport:
    checked: int  # labelled faces old enough to judge
    doubted_by_a: int  # model A contradicts the label with confidence
    flagged: int  # both models do
    by_part: dict[str, int]
    by_label: dict[str, int]

    def summary(self) -> str:
        return (f"{self.checked} faces checked, model A doubts {self.doubted_by_a}, both models {self.flagged} "
                f"(by part {self.by_part}, by label {self.by_label})")


def embed_crops(crops: np.ndarray, progress: bool = True) -> np.ndarray:
    """dlib 128-d embeddings of aligned face crops (each crop taken as the face box)."""
    from PIL import Image
    from tqdm import tqdm

    from .facefeat import _dlib_models

    dlib, _, sp, net = _dlib_models()
    out = np.zeros((len(crops), 128), np.float32)
    for i, c in enumerate(tqdm(crops, desc="dlib embeddings", disable=not progress, mininterval=30)):
        img = np.asarray(Image.fromarray(c).resize((150, 150), Image.BILINEAR))
        out[i] = np.asarray(net.compute_face_descriptor(img, sp(img, dlib.rectangle(10, 10, 140, 145))), np.float32)
    return out


def flag_gender_noise(
    crops: np.ndarray, gender: np.ndarray, age: np.ndarray, part: list[str], model_a: str,
    threshold: float = 0.2, min_age: float = 13.0, fit_size: int = 1000, seed: int = 0, max_age: float = 59.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, NoiseReport]:
    """Returns (flagged mask, p_female of model A, p_female of model B (nan where not computed), report).

    ``gender``: 0 male, 1 female (``Record.gender_index``). Model B's regression is fitted on ``fit_size``
    random faces that model A does not doubt; only the faces model A doubts are then embedded and judged.
    """
    from sklearn.linear_model import LogisticRegression

    from .trainer import teacher_probabilities

    pa = teacher_probabilities(model_a, crops)[0].numpy()[:, 1]
    p_label_a = np.where(gender == 1, pa, 1 - pa)
    judge = (age >= min_age) & (gender >= 0)
    doubt = judge & (p_label_a < threshold)
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(judge & ~doubt)
    fit = rng.choice(pool, size=min(fit_size, len(pool)), replace=False)
    todo = np.flatnonzero(doubt)
    emb = embed_crops(crops[np.concatenate([fit, todo])])
    lr = LogisticRegression(C=10.0, max_iter=3000).fit(emb[: len(fit)], gender[fit])
    pb = np.full(len(crops), np.nan)
    pb[todo] = lr.predict_proba(emb[len(fit) :])[:, 1]
    p_label_b = np.where(gender == 1, pb, 1 - pb)
    flagged = doubt & (np.nan_to_num(p_label_b, nan=1.0) < threshold) & (age <= max_age)
    parts = sorted(set(part))
    report = NoiseReport(
        checked=int(judge.sum()), doubted_by_a=int(doubt.sum()), flagged=int(flagged.sum()),
        by_part={p: int((flagged & (np.asarray(part) == p)).sum()) for p in parts},
        by_label={"female": int((flagged & (gender == 1)).sum()), "male": int((flagged & (gender == 0)).sum())})
    log.info("label noise: %s", report.summary())
    return flagged, pa, pb, report


def write_flagged(path: str | Path, paths: list[str], flagged: np.ndarray, gender: np.ndarray, age: np.ndarray,
                  part: list[str], pa: np.ndarray, pb: np.ndarray) -> None:
    """CSV of flagged images (``path`` relative to the dataset root, as split files name them)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "age", "part", "p_female_a", "p_female_b"])
        for i in np.flatnonzero(flagged):
            w.writerow([paths[i], "female" if gender[i] == 1 else "male", int(age[i]), part[i],
                        f"{pa[i]:.3f}", f"{pb[i]:.3f}"])


def clean_dataset(dataset: str, root: str, split: str, cache: str, model_a: str, out: str | Path,
                  threshold: float = 0.2, min_age: float = 13.0, max_age: float = 59.0) -> NoiseReport:
    """Flag noisy gender labels over every part of a dataset's split; writes the CSV that a training
    source's ``drop`` key reads."""
    import os

    from .config import DataConfig, TrainConfig
    from .dataset import load_arrays

    cfg = TrainConfig(data=DataConfig(dataset=dataset, root=root, split=split, cache=cache))
    parts = ("train", "val", "test")
    arrays = load_arrays(cfg, parts=parts)
    crops = np.concatenate([arrays[p].crops.numpy() for p in parts])
    gender = np.concatenate([arrays[p].gender.numpy() for p in parts])
    age = np.concatenate([arrays[p].age.numpy() for p in parts])
    part = [p for p in parts for _ in range(len(arrays[p]))]
    base = root if os.path.isdir(root) else os.path.dirname(os.path.abspath(root))
    paths = [os.path.relpath(x, base) for p in parts for x in arrays[p].paths]
    flagged, pa, pb, report = flag_gender_noise(crops, gender, age, part, model_a, threshold, min_age,
                                                max_age=max_age)
    write_flagged(out, paths, flagged, gender, age, part, pa, pb)
    return report
