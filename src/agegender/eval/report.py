"""``agegender evaluate``: predictions joined to labels -> metrics.json, report.md and PNG plots."""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.records import Record
from ..errors import DatasetError
from . import metrics as M
from .predictions import PredRow, match_key, read_predictions, run_predictions, write_predictions

log = logging.getLogger(__name__)

AGE_BANDS = M.FAIRFACE9


@dataclass
class EvalResult:
    n_images: int
    n_with_face: int
    age: M.AgeMetrics | None
    adience8: M.GroupAccuracy | None
    fairface9: M.GroupAccuracy | None
    gender: M.GenderMetrics | None
    gender_calibration: dict[str, float] | None
    breakdown: list[dict[str, Any]] = field(default_factory=list)
    #: the group (race x gender where races are known, else age band) with the lowest gender accuracy
    worst_group: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return json.loads(json.dumps(d, default=lambda o: None if isinstance(o, float) and math.isnan(o) else str(o)))


def parse_data_spec(spec: str) -> tuple[str, str]:
    if ":" not in spec:
        raise DatasetError(f"--data expects DATASET:PATH (e.g. utkface:../shared/data/utkface), got {spec!r}")
    name, path = spec.split(":", 1)
    return name.strip().lower(), path


def select_part(records: list[Record], root: str, split: str | None, part: str) -> list[Record]:
    if not split:
        return records
    from ..data.splits import read_split

    rows = read_split(split)
    wanted = {r.path for r in rows if r.part == part or (part.startswith("fold") and str(r.fold) == part[4:])}
    if not wanted:
        raise DatasetError(f"{split}: no rows in part {part!r}")
    base = root if os.path.isdir(root) else os.path.dirname(os.path.abspath(root))
    return [r for r in records if os.path.relpath(r.path, base) in wanted]


def score(records: list[Record], preds: list[PredRow]) -> tuple[EvalResult, dict[str, np.ndarray]]:
    """Join on file name and compute every metric; returns the result and the joined arrays."""
    by_key = {match_key(p.file): p for p in preds}
    rows = [(r, by_key.get(match_key(r.path))) for r in records]
    n = len(rows)
    pa = np.array([p.age if p else math.nan for _, p in rows], float)
    pf = np.array([p.p_female if p else math.nan for _, p in rows], float)
    pg = np.array([{"male": 0, "female": 1}.get(p.gender, -1) if p else -1 for _, p in rows], int)
    exact = np.array([r.age is not None and r.age_low == r.age_high for r, _ in rows])
    ta = np.array([r.age if e else math.nan for (r, _), e in zip(rows, exact)], float)
    tg = np.array([r.gender_index for r, _ in rows], int)
    lo = np.array([r.age_low if r.age_low is not None else math.nan for r, _ in rows], float)
    hi = np.array([r.age_high if r.age_high is not None else math.nan for r, _ in rows], float)
    found = ~np.isnan(pa)
    true_mid = np.where(exact, ta, (lo + hi) / 2)
    arrays = {"pred_age": pa, "p_female": pf, "pred_gender": pg, "true_age": ta, "true_gender": tg,
              "true_mid": true_mid, "found": found}
    res = EvalResult(n_images=n, n_with_face=int(found.sum()), age=None, adience8=None, fairface9=None,
                     gender=None, gender_calibration=None)
    if found.any():
        f = found
        if (exact & f).any():
            res.age = M.age_metrics(pa[f & exact], ta[f & exact])
        known_age = f & ~np.isnan(true_mid)
        if known_age.any():
            res.adience8 = M.group_accuracy(M.age_to_group(pa[known_age], M.ADIENCE8),
                                            M.age_to_group(true_mid[known_age], M.ADIENCE8))
            if exact[known_age].all() or _fairface_bins(lo[known_age & ~exact], hi[known_age & ~exact]):
                res.fairface9 = M.group_accuracy(M.age_to_group(pa[known_age], M.FAIRFACE9),
                                                 M.age_to_group(true_mid[known_age], M.FAIRFACE9))
        gk = f & (tg >= 0) & (pg >= 0)
        if gk.any():
            res.gender = M.gender_metrics(pg[gk], tg[gk])
            if not np.isnan(pf[gk]).any():
                cal = M.gender_calibration(pf[gk], tg[gk], n_bins=10)
                res.gender_calibration = {"ece": cal.ece, "mce": cal.mce, "n": cal.n}
                arrays["calibration_bins"] = np.array([[b.confidence, b.accuracy, b.count] for b in cal.bins])
        # breakdown by gender x age band (x race when known)
        band = [AGE_BANDS.labels[i] if i >= 0 else "?" for i in M.age_to_group(true_mid, AGE_BANDS)]
        gname = ["female" if g == 1 else "male" if g == 0 else "?" for g in tg]
        by: dict[str, list[str]] = {"gender": gname, "age band": band}
        races = [r.extra.get("race", "") for r, _ in rows]
        if any(races):
            by["race"] = [x or "?" for x in races]
        sel = np.where(found)[0]
        race_sets = (["race"], ["race", "gender"]) if "race" in by else ()
        judged = np.where(pg >= 0, tg, -1)  # a face given an age but no gender is left out of gender, as above
        for key_set in (["age band"], ["gender"], *race_sets, list(by)):
            _add_breakdown(res, key_set, {k: [by[k][i] for i in sel] for k in key_set}, pa[sel], ta[sel],
                           pg[sel], judged[sel], true_mid[sel] if res.fairface9 else None)
        res.worst_group = _worst(res.breakdown, "race x gender" if "race" in by else "age band")
    return res, arrays


def _fairface_bins(lo: np.ndarray, hi: np.ndarray) -> bool:
    """Whether every age range is one of FairFace's nine bins (its 9-bin accuracy then means something)."""
    return bool(len(lo)) and all((float(a), float(b)) in M.FAIRFACE9.ranges for a, b in zip(lo, hi))


def _add_breakdown(res: EvalResult, key_set: list[str], sub: dict[str, list[str]], pa: np.ndarray,
                   ta: np.ndarray, pg: np.ndarray, tg: np.ndarray, true_mid: np.ndarray | None) -> None:
    """Rows of ``res.breakdown`` for one combination of keys: age MAE, gender accuracy, 9-bin accuracy."""
    has_exact = bool((~np.isnan(ta)).any())
    mae_rows = M.breakdown(lambda p, t: M.age_mae(p, t), pa, ta, by=sub) if has_exact else []
    acc_rows = M.breakdown(lambda p, t: M.gender_accuracy(p, t), pg, tg, by=sub)
    acc_by = {tuple(r.keys.values()): r.value for r in acc_rows}
    bins_by: dict[tuple, float] = {}
    if true_mid is not None:
        pb, tb = M.age_to_group(pa, M.FAIRFACE9), M.age_to_group(true_mid, M.FAIRFACE9)
        bins_by = {tuple(r.keys.values()): r.value
                   for r in M.breakdown(lambda p, t: M.exact_accuracy(p, t), pb, tb, by=sub)}
    for r in (mae_rows or acc_rows):
        key = tuple(r.keys.values())
        res.breakdown.append({"by": " x ".join(key_set), **r.keys, "n": r.n,
                              "age_mae": r.value if mae_rows else None, "gender_accuracy": acc_by.get(key),
                              "age_bin_accuracy": bins_by.get(key)})


def _worst(rows: list[dict[str, Any]], by: str) -> dict[str, Any] | None:
    """The row of ``rows`` (breakdown ``by``) with the lowest gender accuracy, among groups of 20 or more."""
    cand = [r for r in rows if r["by"] == by and r["gender_accuracy"] is not None and r["n"] >= 20]
    return min(cand, key=lambda r: r["gender_accuracy"]) if cand else None


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{100 * v:.1f} %" if pct else f"{v:.2f}"


def markdown(res: EvalResult, title: str, command: str) -> str:
    lines = [f"# {title}", "", f"Reproduce: `{command}`", "",
             f"- images: {res.n_images}; main face found in {res.n_with_face} "
             f"({100 * res.n_with_face / max(1, res.n_images):.1f} %); metrics below are over those.", ""]
    lines += ["| metric | value |", "|---|---|"]
    if res.age:
        lines += [f"| age MAE (years) | {_fmt(res.age.mae)} |", f"| age CS@5 | {_fmt(res.age.cs, True)} |"]
    if res.adience8:
        lines += [f"| Adience-8 group accuracy (exact / 1-off) | {_fmt(res.adience8.exact, True)} / "
                  f"{_fmt(res.adience8.one_off, True)} |"]
    if res.fairface9:
        lines += [f"| FairFace-9 group accuracy (exact / 1-off) | {_fmt(res.fairface9.exact, True)} / "
                  f"{_fmt(res.fairface9.one_off, True)} |"]
    if res.gender:
        lines += [f"| gender accuracy | {_fmt(res.gender.accuracy, True)} |",
                  f"| gender balanced accuracy | {_fmt(res.gender.balanced_accuracy, True)} |"]
    if res.gender_calibration:
        lines += [f"| gender ECE (10 bins) | {res.gender_calibration['ece']:.4f} |"]
    if res.worst_group:
        w = res.worst_group
        grp = ", ".join(str(w[k]) for k in w["by"].split(" x "))
        lines += [f"| worst group ({w['by']}) | {grp}: gender {_fmt(w['gender_accuracy'], True)} (n={w['n']}) |"]
    if res.breakdown:
        lines += ["", "## Breakdown", "", "| by | group | n | age MAE | gender accuracy | 9-bin accuracy |",
                  "|---|---|---|---|---|---|"]
        meta = ("by", "n", "age_mae", "gender_accuracy", "age_bin_accuracy")
        for b in res.breakdown:
            grp = ", ".join(str(v) for k, v in b.items() if k not in meta)
            mae, acc = _fmt(b["age_mae"]), _fmt(b["gender_accuracy"], True)
            lines.append(f"| {b['by']} | {grp} | {b['n']} | {mae} | {acc} | {_fmt(b.get('age_bin_accuracy'), True)} |")
    lines += ["", "Plots: confusion_adience8.png, confusion_fairface9.png, confusion_gender.png, reliability.png, "
              "error_by_age.png, groups.png"]
    return "\n".join(lines) + "\n"


def evaluate_records(records: list[Record], preds: list[PredRow], out: str | Path, title: str, command: str
                     ) -> EvalResult:
    from .plots import write_plots

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res, arrays = score(records, preds)
    (out / "metrics.json").write_text(json.dumps(res.to_dict(), indent=1))
    (out / "report.md").write_text(markdown(res, title, command))
    write_plots(arrays, res, out)
    return res


def evaluate_command(data: str | None, split: str | None, part: str, model: str | None, out: str,
                     predictions: str | None, aligned: bool = False, limit: int = 0, threads: int = 0,
                     tta: bool = False, drop: str | None = None, card: str | None = None,
                     label: str | None = None, progress: bool = True) -> str:
    import csv
    import os
    import sys

    from ..data.datasets import load_records

    if not data:
        raise DatasetError("--data DATASET:PATH is required (the labels to score against)")
    name, root = parse_data_spec(data)
    records = load_records(name, root)
    records = select_part(records, root, split, part)
    if drop:  # e.g. the label-noise list of `agegender clean`: the "cleaned" figures
        base = root if os.path.isdir(root) else os.path.dirname(os.path.abspath(root))
        with open(drop, newline="") as fh:
            dropped = {r["path"] for r in csv.DictReader(fh)}
        records = [r for r in records if os.path.relpath(r.path, base) not in dropped]
    if limit:
        records = records[:limit]
    if not records:
        raise DatasetError("no labelled images to evaluate")
    if predictions:
        preds = read_predictions(predictions)
    else:
        preds = run_predictions([r.path for r in records], model=model, aligned=aligned, threads=threads, tta=tta,
                                progress=progress)
        Path(out).mkdir(parents=True, exist_ok=True)
        write_predictions(preds, Path(out) / "predictions.csv")
    cmd = "agegender " + " ".join(sys.argv[1:]) if len(sys.argv) > 2 else "agegender evaluate"
    res = evaluate_records(records, preds, out, f"Evaluation: {name} {part if split else ''}".strip(), cmd)
    if card:  # the figures go into the model card too
        record_in_card(card, label or f"{name} {part if split else 'all'}", res, cmd)
    return markdown(res, f"Evaluation: {name}", cmd)


def card_entry(res: EvalResult, command: str) -> dict[str, Any]:
    """The headline figures of an evaluation, as a model card records them (``metrics.full_pipeline``)."""
    entry: dict[str, Any] = {"images": res.n_images, "faces_found": res.n_with_face, "command": command}
    if res.age:
        entry.update(age_mae=round(res.age.mae, 3), age_cs5=round(res.age.cs, 4))
    if res.fairface9 and not res.age:
        entry.update(age_bin9_accuracy=round(res.fairface9.exact, 4), age_bin9_one_off=round(res.fairface9.one_off, 4))
    if res.gender:
        entry["gender_accuracy"] = round(res.gender.accuracy, 4)
    if res.gender_calibration:
        entry["gender_ece"] = round(res.gender_calibration["ece"], 4)
    if res.worst_group:
        w = res.worst_group
        entry["worst_group"] = {"group": ", ".join(str(w[k]) for k in w["by"].split(" x ")), "n": w["n"],
                                "gender_accuracy": round(w["gender_accuracy"], 4)}
    return entry


def known_biases(res: EvalResult, label: str) -> str:
    """One limitation line from an evaluation: the weakest age band and group against the whole set."""
    bands = [b for b in res.breakdown if b["by"] == "age band" and b["n"] >= 20]
    parts = []
    if res.gender and bands:
        worst = min(bands, key=lambda b: b["gender_accuracy"])
        parts.append(f"gender is least accurate at ages {worst['age band']} ({100 * worst['gender_accuracy']:.1f} % "
                     f"against {100 * res.gender.accuracy:.1f} % overall)")
    with_mae = [b for b in bands if b["age_mae"] is not None]
    if with_mae:
        worst = max(with_mae, key=lambda b: b["age_mae"])
        parts.append(f"age is least accurate at {worst['age band']} (MAE {worst['age_mae']:.1f} years)")
    if res.worst_group and res.worst_group["by"] != "age band":
        w = res.worst_group
        parts.append(f"the weakest group is {', '.join(str(w[k]) for k in w['by'].split(' x '))} "
                     f"(gender {100 * w['gender_accuracy']:.1f} %)")
    return f"Measured on {label} (full pipeline): " + "; ".join(parts) + "." if parts else ""


def record_in_card(card_path: str | Path, label: str, res: EvalResult, command: str) -> None:
    """Write an evaluation's figures into a model card (``metrics.full_pipeline[label]``) and its known
    biases into the card's limitations (replacing an earlier line for the same label)."""
    from dataclasses import replace

    from ..card import ModelCard

    card = ModelCard.load(card_path)
    metrics = dict(card.metrics)
    metrics["full_pipeline"] = {**metrics.get("full_pipeline", {}), label: card_entry(res, command)}
    prefix = f"Measured on {label} (full pipeline): "
    limits = [x for x in card.limitations if not x.startswith(prefix)]
    line = known_biases(res, label)
    card = replace(card, metrics=metrics, limitations=tuple(limits + ([line] if line else [])))
    card.save(card_path)
