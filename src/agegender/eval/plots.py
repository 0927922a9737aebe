"""PNG plots for an evaluation (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import metrics as M


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _confusion(cm: M.ConfusionMatrix, title: str, path: Path) -> None:
    plt = _plt()
    norm = cm.normalized()
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(cm.labels), 0.8 + 0.55 * len(cm.labels)))
    ax.imshow(np.nan_to_num(norm), cmap="Blues", vmin=0, vmax=1)
    for i in range(len(cm.labels)):
        for j in range(len(cm.labels)):
            if cm.counts[i, j]:
                ax.text(j, i, f"{cm.counts[i, j]}", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(cm.labels)), cm.labels, rotation=45, ha="right")
    ax.set_yticks(range(len(cm.labels)), cm.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _reliability(plt: Any, bins: np.ndarray, ece: float, out: Path) -> Path:
    """Gender reliability diagram: accuracy against confidence per bin."""
    fig, ax = plt.subplots(figsize=(4, 4))
    ok = bins[:, 2] > 0
    centres = (np.arange(len(bins)) + 0.5) / len(bins)
    ax.bar(centres[ok], bins[ok, 1], width=1 / len(bins), edgecolor="k", alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "r--", label="perfect calibration")
    ax.plot(bins[ok, 0], bins[ok, 1], "ko", ms=3)
    ax.set_xlim(0.4, 1)
    ax.set_ylim(0.4, 1)
    ax.set_xlabel("confidence of the predicted gender")
    ax.set_ylabel("accuracy")
    ax.set_title(f"gender reliability (ECE {ece:.3f})")
    ax.legend(loc="upper left")
    fig.tight_layout()
    p = out / "reliability.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def _error_by_age(plt: Any, pa: np.ndarray, ta: np.ndarray, out: Path) -> Path:
    """Age MAE and mean signed error per 5-year bin of the true age."""
    exact = ~np.isnan(ta)
    err = np.abs(pa[exact] - ta[exact])
    signed = pa[exact] - ta[exact]
    edges = np.arange(0, 105, 5)
    idx = np.clip(np.digitize(ta[exact], edges) - 1, 0, len(edges) - 2)
    mae = [err[idx == k].mean() if (idx == k).any() else np.nan for k in range(len(edges) - 1)]
    bias = [signed[idx == k].mean() if (idx == k).any() else np.nan for k in range(len(edges) - 1)]
    cnt = [int((idx == k).sum()) for k in range(len(edges) - 1)]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = edges[:-1] + 2.5
    ax.bar(x, mae, width=4, alpha=0.7, label="MAE")
    ax.plot(x, bias, "r.-", label="mean signed error (pred - true)")
    ax.axhline(0, color="k", lw=0.5)
    for xi, c in zip(x, cnt):
        if c:
            ax.text(xi, 0.2, str(c), ha="center", fontsize=6, rotation=90)
    ax.set_xlabel("true age (5-year bins; counts at the bottom)")
    ax.set_ylabel("years")
    ax.set_title("age error by true age")
    ax.legend()
    fig.tight_layout()
    p = out / "error_by_age.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def _groups(plt: Any, rows: list[dict[str, Any]], out: Path) -> Path:
    """Age MAE and gender accuracy per race, gender and age band."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.9 + 0.28 * len(rows)))
    labels = [f"{b['by']}: {b.get(b['by'], '')} (n={b['n']})" for b in rows]
    y = np.arange(len(rows))
    axes[0].barh(y, [b["age_mae"] if b["age_mae"] is not None else 0 for b in rows], color="tab:blue")
    axes[0].set_yticks(y, labels, fontsize=7)
    axes[0].set_xlabel("age MAE (years)")
    axes[0].invert_yaxis()
    axes[1].barh(y, [100 * b["gender_accuracy"] if b["gender_accuracy"] is not None else 0 for b in rows],
                 color="tab:purple")
    axes[1].set_yticks(y, [""] * len(rows))
    axes[1].set_xlim(50, 100)
    axes[1].set_xlabel("gender accuracy (%)")
    axes[1].invert_yaxis()
    fig.tight_layout()
    p = out / "groups.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def write_plots(arrays: dict[str, np.ndarray], res: Any, out: Path) -> list[Path]:
    plt = _plt()
    written = []
    f = arrays["found"]
    pa, tm, ta = arrays["pred_age"][f], arrays["true_mid"][f], arrays["true_age"][f]
    known = ~np.isnan(tm)
    for scheme, name in ((M.ADIENCE8, "adience8"), (M.FAIRFACE9, "fairface9")):
        if known.any():
            cm = M.confusion_matrix(M.age_to_group(pa[known], scheme), M.age_to_group(tm[known], scheme),
                                    labels=scheme.labels)
            p = out / f"confusion_{name}.png"
            _confusion(cm, f"age groups ({name})", p)
            written.append(p)
    pg, tg = arrays["pred_gender"][f], arrays["true_gender"][f]
    gk = (tg >= 0) & (pg >= 0)
    if gk.any():
        cm = M.confusion_matrix(pg[gk], tg[gk], labels=("male", "female"))
        p = out / "confusion_gender.png"
        _confusion(cm, "gender", p)
        written.append(p)
    if "calibration_bins" in arrays:
        written.append(_reliability(plt, arrays["calibration_bins"], res.gender_calibration["ece"], out))
    if (~np.isnan(ta)).any():
        written.append(_error_by_age(plt, pa, ta, out))
    rows = [b for b in res.breakdown if b["by"] in ("race", "gender", "age band")]
    if rows:
        written.append(_groups(plt, rows, out))
    return written
