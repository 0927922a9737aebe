"""Training-side commands: train, cv, export, explain, evaluate. Heavy imports happen on use."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import (
    IN_DIR,
    IN_FILE,
    NON_NEGATIVE,
    OUT_DIR,
    OUT_FILE,
    THREADS,
    DataSpec,
    KeyValue,
    Number,
    UsageError,
    install_hint,
    progress_wanted,
)

FRACTION = Number(float, 0, 1)
AGE = Number(float, 0, 100)


def _need_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        from ..errors import AgeGenderError

        raise AgeGenderError(
            f"this command needs the training extra: pip install torch==2.13.0, then {install_hint('train')}"
        ) from exc


def _epoch_lines() -> None:
    """Training's own log lines (one per epoch, resume, early stop) on standard error even without --debug:
    where no terminal shows a progress bar, they are what a long run shows of itself."""
    import logging

    trainer = logging.getLogger("agegender.train.trainer")
    if trainer.getEffectiveLevel() > logging.INFO:
        trainer.setLevel(logging.INFO)


def cmd_train(args: argparse.Namespace) -> int:
    _need_torch()
    _epoch_lines()
    from ..train.config import load_config
    from ..train.trainer import fit

    run = fit(load_config(args.config, args.set))
    print(f"run written to {run}")
    return 0


def cmd_cv(args: argparse.Namespace) -> int:
    _need_torch()
    _epoch_lines()
    from ..train.config import load_config
    from ..train.crossval import cross_validate

    cfg = load_config(args.config, args.set)
    result = cross_validate(cfg, folds=args.folds)
    print(result.markdown())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    _need_torch()
    from ..train.export import export_calibrated

    card, report = export_calibrated(args.runs, args.out, flip=not args.no_flip, calibrate_on_val=not args.no_calibrate,
                                     with_test=not args.no_test, fp16_weights=args.fp16_weights,
                                     name=args.name, version=args.version, notes=args.notes)
    Path(args.out).with_suffix(".report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "by_group"}, indent=1))
    print(f"exported {args.out} (sha256 {card.sha256[:16]}…)")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    _need_torch()
    from ..train.interpolate import interpolate_run

    out = interpolate_run(args.run, args.alpha, args.out, start=args.start or "")
    print(f"interpolated run written to {out}")
    return 0


def cmd_noise_ceiling(args: argparse.Namespace) -> int:
    _need_torch()
    from ..train.noise_ceiling import set_noise_ceiling

    if args.remove == (args.percentile is not None):
        raise UsageError("give either --percentile P or --remove")
    value = set_noise_ceiling(args.card, args.config, None if args.remove else args.percentile, limit=args.limit)
    print(f"{args.card}: noise ceiling {'removed' if value is None else value}")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    _need_torch()
    from ..train.label_noise import clean_dataset

    if args.min_age > args.max_age:
        raise UsageError(f"--min-age {args.min_age:g} is above --max-age {args.max_age:g}")
    dataset, _, root = args.data.partition(":")
    report = clean_dataset(dataset, root, args.split, args.cache, args.model, args.out, threshold=args.threshold,
                           min_age=args.min_age, max_age=args.max_age)
    print(report.summary())
    print(f"flagged images written to {args.out} (use it as a training source's `drop`)")
    return 0


def cmd_twins(args: argparse.Namespace) -> int:
    import os

    from ..data.datasets import load_records
    from ..data.twins import group_pairs, thumbnails, twin_pairs, write_twins

    dataset, _, root = args.data.partition(":")
    records = load_records(dataset, root)
    thumbs = thumbnails([r.path for r in records], progress=progress_wanted(False))
    groups = group_pairs(len(records), twin_pairs(thumbs, args.threshold))
    base = root if os.path.isdir(root) else os.path.dirname(os.path.abspath(root))
    write_twins(args.out, [os.path.relpath(r.path, base) for r in records], groups)
    print(f"{len(groups)} twin groups, {sum(len(g) for g in groups)} images, written to {args.out}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from ..explain import explain_image

    maps = None
    if args.run:
        _need_torch()
        import numpy as np

        from ..train.gradcam import gradcam_maps

        def maps(crops: np.ndarray) -> dict[str, np.ndarray]:  # uint8 NHWC crops -> (N, h, w) maps
            return {f"Grad-CAM {k}": v for k, v in gradcam_maps(args.run, crops).items()}

    written = explain_image(args.image, args.out, model=args.model, maps=maps)
    for p in written:
        print(p)
    return 0 if written else 1


def cmd_evaluate(args: argparse.Namespace) -> int:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:  # its plots are drawn at the end: say so before the work
        raise UsageError(f"evaluate draws its plots with matplotlib, which is not installed: {install_hint('eval')}")
    from ..eval.report import evaluate_command

    summary = evaluate_command(data=args.data, split=args.split, part=args.part, model=args.model, out=args.out,
                               predictions=args.predictions, aligned=args.aligned, limit=args.limit,
                               threads=args.threads, tta=args.tta, drop=args.drop, card=args.card,
                               label=args.label, progress=progress_wanted(False))
    print(summary, file=sys.stdout)
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    _need_torch()
    from ..train.config import load_config
    from ..train.dataset import build_caches

    for config in args.configs:
        for line in build_caches(load_config(config, args.set)):
            print(line)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    cc = sub.add_parser("cache", help="build the aligned-crop caches and splits that training configs read")
    cc.add_argument("configs", nargs="+", type=IN_FILE, metavar="CONFIG")
    cc.add_argument("--set", action="append", type=KeyValue(), default=[], metavar="KEY=VALUE",
                    help="override a config key (dotted: optim.lr=3e-4)")
    cc.set_defaults(func=cmd_cache)

    t = sub.add_parser("train", help="train a model from a YAML config (needs the train extra)")
    t.add_argument("config", type=IN_FILE)
    t.add_argument("--set", action="append", type=KeyValue(), default=[], metavar="KEY=VALUE",
                   help="override a config key (dotted: optim.lr=3e-4)")
    t.set_defaults(func=cmd_train)

    cv = sub.add_parser("cv", help="k-fold cross-validation of a config; prints mean ± std")
    cv.add_argument("config", type=IN_FILE)
    cv.add_argument("--set", action="append", type=KeyValue(), default=[], metavar="KEY=VALUE",
                    help="override a config key (dotted: optim.lr=3e-4)")
    cv.add_argument("--folds", type=Number(int, 2), default=5)
    cv.set_defaults(func=cmd_cv)

    ex = sub.add_parser("export", help="export run(s) to ONNX + model card (several runs: an ensemble)")
    ex.add_argument("runs", nargs="+", metavar="RUN_DIR",
                    help="training runs; after the first, also networks of an exported model (model.onnx#K)")
    ex.add_argument("--out", type=OUT_FILE, default="model.onnx",
                    help="ONNX path; the card is written beside it (.json)")
    ex.add_argument("--no-flip", action="store_true", help="no mirror test-time augmentation in the graph")
    ex.add_argument("--name", help="model name in the card (default: the run's config name, or 'ensemble')")
    ex.add_argument("--version", default="1.0.0", help="model version in the card")
    ex.add_argument("--notes", default="", help="what the model is, in a sentence or two, for the card")
    ex.add_argument("--no-calibrate", action="store_true", help="skip temperature scaling on validation")
    ex.add_argument("--no-test", action="store_true", help="do not score the test part")
    ex.add_argument("--fp16-weights", action="store_true",
                    help="store weights as float16 (half the file; computation stays float32)")
    ex.set_defaults(func=cmd_export)

    register_models(sub)
    register_data(sub)


def register_models(sub: argparse._SubParsersAction) -> None:
    ip = sub.add_parser("interpolate", help="move a fine-tuned run's weights back towards its start (WiSE-FT)")
    ip.add_argument("run", type=IN_DIR, metavar="RUN_DIR", help="a fine-tuned training run")
    ip.add_argument("--alpha", type=FRACTION, required=True, help="share of the fine-tuned weights, 0 to 1")
    ip.add_argument("--start", metavar="RUN_OR_ONNX#K", help="the network it started from (default: its init)")
    ip.add_argument("--out", type=OUT_DIR, required=True, metavar="DIR", help="new run folder (best.pt)")
    ip.set_defaults(func=cmd_interpolate)

    nc = sub.add_parser("noise-ceiling", help="write into a card the grain level of its training crops, above "
                        "which inference smooths a crop")
    nc.add_argument("card", type=IN_FILE, metavar="CARD", help="the model card (JSON) to update")
    nc.add_argument("--config", action="append", type=IN_FILE, default=[],
                    help="training config whose train crops to measure")
    nc.add_argument("--percentile", type=Number(float, 0, 100, lo_open=True),
                    help="share of training crops under the ceiling, e.g. 95")
    nc.add_argument("--limit", type=NON_NEGATIVE, default=0, help="measure at most this many crops per config (0: all)")
    nc.add_argument("--remove", action="store_true", help="take the ceiling out of the card")
    nc.set_defaults(func=cmd_noise_ceiling)



def register_data(sub: argparse._SubParsersAction) -> None:
    cl = sub.add_parser("clean", help="flag noisy gender labels with two unlike models (writes a drop list)")
    cl.add_argument("--data", type=DataSpec(), required=True, metavar="SPEC", help="DATASET:PATH, e.g. aaf:../data/aaf")
    cl.add_argument("--split", type=IN_FILE, required=True, metavar="CSV")
    cl.add_argument("--cache", required=True, metavar="DIR", help="the dataset's crop cache")
    cl.add_argument("--model", default="default", help="model A: a model that never saw this dataset")
    cl.add_argument("--threshold", type=FRACTION, default=0.2, help="flag when both give the label less than this")
    cl.add_argument("--min-age", type=AGE, default=13.0, help="judge faces of at least this age")
    cl.add_argument("--max-age", type=AGE, default=59.0, help="and of at most this age")
    cl.add_argument("--out", type=OUT_FILE, required=True, metavar="CSV")
    cl.set_defaults(func=cmd_clean)

    tw = sub.add_parser("twins", help="find near-identical images (grey-thumbnail correlation) for leak-free splits")
    tw.add_argument("--data", type=DataSpec(), required=True, metavar="SPEC", help="DATASET:PATH")
    tw.add_argument("--threshold", type=Number(float, -1, 1), default=0.97,
                    help="correlation at or above which two images are twins")
    tw.add_argument("--out", type=OUT_FILE, required=True, metavar="CSV")
    tw.set_defaults(func=cmd_twins)

    xp = sub.add_parser("explain", help="attention map (and Grad-CAM with --run) overlays as PNG")
    xp.add_argument("image", type=IN_FILE)
    xp.add_argument("--out", type=OUT_DIR, default="explain", help="output folder")
    xp.add_argument("--model", metavar="CARD")
    xp.add_argument("--run", type=IN_DIR, metavar="RUN_DIR",
                    help="a training run, for Grad-CAM (needs the train extra)")
    xp.set_defaults(func=cmd_explain)

    ev = sub.add_parser("evaluate", help="score predictions against labels; writes metrics, report and plots")
    ev.add_argument("--data", type=DataSpec(), required=True, metavar="SPEC",
                    help="DATASET:PATH, e.g. utkface:../shared/data/utkface")
    ev.add_argument("--split", type=IN_FILE, metavar="CSV", help="split file; with --part, evaluate only that part")
    ev.add_argument("--part", default="test")
    ev.add_argument("--predictions", type=IN_FILE, metavar="CSV",
                    help="score this predictions CSV instead of running a model")
    ev.add_argument("--model", metavar="CARD")
    ev.add_argument("--aligned", action="store_true", help="inputs are face crops: no detection")
    ev.add_argument("--limit", type=NON_NEGATIVE, default=0, help="evaluate at most N images")
    ev.add_argument("--threads", type=THREADS, default=0)
    ev.add_argument("--tta", action="store_true", help="mirror test-time augmentation (twice the model time)")
    ev.add_argument("--drop", type=IN_FILE, metavar="CSV",
                    help="leave out the images this CSV lists (column path), e.g. the noisy labels found by "
                         "`agegender clean`")
    ev.add_argument("--out", type=OUT_DIR, required=True, metavar="DIR")
    ev.add_argument("--card", type=IN_FILE, metavar="CARD",
                    help="also write the figures into this model card (metrics.full_pipeline, limitations)")
    ev.add_argument("--label", help="the figures' name in the card (default: DATASET PART)")
    ev.set_defaults(func=cmd_evaluate)
