"""A second, independent gender teacher for distillation: dlib's face-recognition embedding + logistic
regression, cross-fitted so that no training image is scored by a classifier that saw it.

dlib's ResNet (public domain, ``face-recognition-models``) was trained on millions of faces for
identity, not on UTKFace; its 128-d embedding separates perceived gender well and makes mistakes unlike
our CNNs'. It is used only while training (``face_teacher`` in the config): at 60-70 ms per face it is far
too slow for inference, and nothing of it ships in the model. Needs ``pip install '.[facefeat]'``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DatasetError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

EMBED_DIM = 128


def _dlib_models():
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if importlib.util.find_spec("dlib") is None or spec is None or not spec.submodule_search_locations:
        raise DatasetError("face_teacher needs dlib and its models: pip install '.[facefeat]'")
    # the package's own helpers import pkg_resources (gone from recent setuptools): find the files directly
    models = Path(list(spec.submodule_search_locations)[0]) / "models"
    import dlib

    det = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    net = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
    return dlib, det, sp, net


def embed_images(paths: list[str], progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """128-d dlib embeddings of the largest face of each image (``found`` False: no face detected, the
    embedding is taken from a fixed central box, as suits images that are face crops)."""
    from PIL import Image
    from tqdm import tqdm

    dlib, det, sp, net = _dlib_models()
    emb = np.zeros((len(paths), EMBED_DIM), np.float32)
    found = np.zeros(len(paths), bool)
    for i, p in enumerate(tqdm(paths, desc="face embeddings", disable=not progress, mininterval=30)):
        img = np.asarray(Image.open(p).convert("RGB"))
        h, w = img.shape[:2]
        rects = det(img, 1)
        if len(rects):
            rect, found[i] = max(rects, key=lambda r: r.area()), True
        else:
            rect = dlib.rectangle(int(w * 0.15), int(h * 0.2), int(w * 0.85), int(h * 0.9))
        emb[i] = np.asarray(net.compute_face_descriptor(img, sp(img, rect)), np.float32)
    return emb, found


def cached_embeddings(paths: list[str], cache_file: str | Path, chunk: int = 1000) -> np.ndarray:
    """Embeddings for ``paths``, computed once and kept in ``cache_file`` keyed by the file's content hash
    (the split file's ``content_hash``), so moved or renamed images are not recomputed and two files of the
    same name never share an entry; saved every ``chunk`` images so that an interrupted run resumes."""
    from ..data.splits import file_hash

    cache_file = Path(cache_file)
    store: dict[str, np.ndarray] = {}
    if cache_file.exists():
        z = np.load(cache_file)
        store = dict(zip(z["keys"].tolist(), z["emb"]))
    keys = [file_hash(p) for p in paths]
    todo = [i for i, k in enumerate(keys) if k not in store]
    log.info("face embeddings: %d cached, %d to compute", len(paths) - len(todo), len(todo))
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    for s in range(0, len(todo), chunk):
        part = todo[s : s + chunk]
        emb, _ = embed_images([paths[i] for i in part])
        store.update({keys[i]: e for i, e in zip(part, emb)})
        tmp = cache_file.with_name(f"{cache_file.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, keys=np.array(list(store)), emb=np.stack(list(store.values())))
        os.replace(tmp, cache_file)
    return np.stack([store[k] for k in keys]) if keys else np.zeros((0, EMBED_DIM), np.float32)


def crossfit_gender(emb: np.ndarray, gender: np.ndarray, folds: int = 5, seed: int = 0, c: float = 10.0
                    ) -> np.ndarray:
    """P(female) for every row from a logistic regression that did not see that row (k-fold cross-fit);
    rows of unknown gender (-1) get the prediction of a model fitted on all known rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    known = np.flatnonzero(gender >= 0)
    if len(known) < folds * 2 or len(np.unique(gender[known])) < 2:
        raise DatasetError("face_teacher needs labelled faces of both genders")
    out = np.zeros(len(emb), np.float64)

    def model():
        return LogisticRegression(C=c, max_iter=3000)

    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(known, gender[known]):
        m = model().fit(emb[known[tr]], gender[known[tr]])
        out[known[te]] = m.predict_proba(emb[known[te]])[:, 1]
    unknown = np.flatnonzero(gender < 0)
    if len(unknown):
        out[unknown] = model().fit(emb[known], gender[known]).predict_proba(emb[unknown])[:, 1]
    acc = float(((out[known] >= 0.5) == (gender[known] == 1)).mean())
    log.info("face-embedding gender teacher: cross-fitted accuracy %.4f on %d faces", acc, len(known))
    return out


def embedding_cache_path(dataset_root: str, crop_cache: str) -> Path:
    """Where a dataset's face embeddings are kept: beside its crop cache, one file per dataset."""
    return Path(crop_cache).parent / f"{Path(dataset_root).stem or 'data'}-faceemb.npz"


def mix_face_teacher(soft_gender: torch.Tensor, paths: list[str], gender: np.ndarray, weight: float,
                     cache_file: Path, seed: int = 0) -> torch.Tensor:
    """``(1 - weight) * soft_gender + weight * [1 - p, p]``, p the cross-fitted face-embedding P(female)."""
    import torch

    p = crossfit_gender(cached_embeddings(paths, cache_file), gender, seed=seed)
    face = torch.from_numpy(np.stack([1 - p, p], 1)).to(soft_gender.dtype)
    return (1 - weight) * soft_gender + weight * face
