"""Baselines from the project report: frozen pretrained-CNN features + SVM / random forest.

ImageNet MobileNetV2 (frozen, global-average-pooled 1280-d features of the same aligned crops) ->
standardise -> PCA(256) -> scikit-learn: a linear SVM (gender) and linear SVR (age), and random
forests (gender classifier, age regressor). Same split as the networks; scored on the test part.

    python -m agegender.train.baselines configs/attn_mbv2-utkface.yaml --out docs/results/baselines.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from .augment import normalize
from .config import load_config
from .dataset import load_arrays

log = logging.getLogger(__name__)


@torch.no_grad()
def imagenet_features(crops: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    from ..models.backbones import MobileNetV2, load_imagenet_weights

    bb = MobileNetV2()
    load_imagenet_weights(bb)
    bb.eval()
    out = []
    for i in range(0, len(crops), batch_size):
        out.append(bb.forward_features(normalize(crops[i : i + batch_size])).mean(dim=(2, 3)).numpy())
    return np.concatenate(out)


def run_baselines(config: str, out: str | None = None, seed: int = 0) -> dict[str, dict[str, float]]:
    from sklearn.decomposition import PCA
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC, LinearSVR

    cfg = load_config(config)
    arrays = load_arrays(cfg, parts=("train", "test"))
    tr, te = arrays["train"], arrays["test"]
    t0 = time.time()
    xtr, xte = imagenet_features(tr.crops), imagenet_features(te.crops)
    log.info("features in %.0f s", time.time() - t0)
    ytr_a, yte_a = tr.age.numpy(), te.age.numpy()
    ytr_g, yte_g = tr.gender.numpy(), te.gender.numpy()
    results: dict[str, dict[str, float]] = {}
    models = {
        "ImageNet features + linear SVM/SVR": (
            make_pipeline(StandardScaler(), PCA(256, random_state=seed), LinearSVC(C=0.05, max_iter=5000)),
            make_pipeline(StandardScaler(), PCA(256, random_state=seed), LinearSVR(C=0.05, max_iter=5000)),
        ),
        "ImageNet features + random forest": (
            make_pipeline(StandardScaler(), PCA(256, random_state=seed),
                          RandomForestClassifier(300, min_samples_leaf=2, n_jobs=2, random_state=seed)),
            make_pipeline(StandardScaler(), PCA(256, random_state=seed),
                          RandomForestRegressor(300, min_samples_leaf=2, n_jobs=2, random_state=seed)),
        ),
    }
    for name, (clf, reg) in models.items():
        t0 = time.time()
        clf.fit(xtr, ytr_g)
        reg.fit(xtr, ytr_a)
        pred_a = np.clip(reg.predict(xte), 0, 100)
        err = np.abs(pred_a - yte_a)
        results[name] = {
            "age_mae": round(float(err.mean()), 3),
            "age_cs5": round(float((err <= 5).mean()), 4),
            "gender_accuracy": round(float((clf.predict(xte) == yte_g).mean()), 4),
            "fit_seconds": round(time.time() - t0, 1),
            "n_train": int(len(xtr)), "n_test": int(len(xte)),
        }
        log.info("%s: %s", name, results[name])
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(results, indent=1))
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--out")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(2)
    for name, r in run_baselines(args.config, args.out).items():
        print(f"{name}: {r}")


if __name__ == "__main__":
    main()
