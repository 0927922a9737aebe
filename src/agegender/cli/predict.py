"""``agegender predict`` and ``agegender info``: images in, faces out; the model card."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from ..inputs import expand_inputs
from ..rows import CSV_COLUMNS, csv_rows
from .common import EXIT_OK, EXIT_SOME_FAILED, UsageError, table_lines


def _annotated_name(out_dir: Path, source: str, used: set[str]) -> Path:
    stem = Path(source).stem or "image"
    name = f"{stem}.jpg"
    k = 1
    while name in used:
        name = f"{stem}_{k}.jpg"
        k += 1
    used.add(name)
    return out_dir / name


def cmd_predict(args: argparse.Namespace) -> int:
    from ..io import load_image
    from ..predictor import Predictor
    from ..types import Prediction

    if args.max_faces is not None and args.max_faces < 1:
        raise UsageError("--max-faces must be at least 1")
    if args.threads < 0:
        raise UsageError("--threads must be >= 0")
    paths, missing = expand_inputs(args.inputs)
    if not paths and not missing:
        raise UsageError("no image files found in the given inputs")
    predictor = Predictor(model=args.model, threads=args.threads, max_faces=args.max_faces,
                          min_face_size=args.min_face_size, score_threshold=args.score_threshold, tta=args.tta)
    # the model loads (and is verified) inside iter_predict, on one core while the first images are decoded
    # and searched on the other; a model that cannot load still stops the run before any result
    out = open(args.output, "w", newline="", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    ann_dir = Path(args.annotate) if args.annotate else None
    if ann_dir:
        ann_dir.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    writer = csv.writer(out, lineterminator="\n") if args.format == "csv" else None
    if writer:
        writer.writerow(CSV_COLUMNS)
    results_json = []
    failed = 0
    show = len(paths) > 5 and not args.quiet
    if show:
        from tqdm import tqdm  # only with a progress bar: importing tqdm costs start-up time

        bar = tqdm(total=len(paths), unit="img", file=sys.stderr)
        write_error = tqdm.write
    else:
        bar = None

        def write_error(msg: str, file=sys.stderr) -> None:
            print(msg, file=file)

    def emit(pred: Prediction) -> None:
        nonlocal failed
        if pred.error:
            failed += 1
            write_error(f"error: {pred.error}", file=sys.stderr)
        if writer:
            writer.writerows(csv_rows(pred))
        elif args.format == "json":
            results_json.append(pred.to_dict())
        else:
            for line in table_lines(pred):
                print(line, file=out)
        if ann_dir and pred.ok:
            from ..annotate import draw_faces

            img = load_image(pred.source)
            draw_faces(img, pred.faces).save(_annotated_name(ann_dir, pred.source, used), quality=92)

    for item, err in missing:
        emit(Prediction(source=item, width=0, height=0, faces=(), error=err))
    try:
        for pred in predictor.iter_predict(paths, aligned=args.aligned, chunk=16):
            emit(pred)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if args.format == "json":
            json.dump(results_json, out, indent=2)
            out.write("\n")
        if out is not sys.stdout:
            out.close()
    if failed:
        print(f"{failed} of {len(paths) + len(missing)} input(s) failed", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    from ..runtime import ModelRuntime, builtin_models

    if args.list:
        for name, card in builtin_models().items():
            print(f"{name:<10} {card}")
        return EXIT_OK

    rt = ModelRuntime(args.model)
    c = rt.card
    if args.json:
        print(c.to_json())
        return EXIT_OK
    print(f"model:        {c.name} {c.version} ({c.architecture})")
    print(f"file:         {rt.path} (sha256 {c.sha256[:16]}…, verified)")
    print(f"input:        {c.input.size}x{c.input.size} {c.input.color}, mean {c.input.mean}, std {c.input.std}")
    print(f"alignment:    5-point similarity, margin {c.alignment.margin}")
    for k, v in enumerate(c.alignment.views, start=2):
        print(f"view {k}:       the same face framed with margin {v.margin} ({v.border} past the photo)")
    print(f"ages:         {c.age_min}-{c.age_max}; interval = quantiles {c.interval}")
    print(f"calibration:  gender T={c.gender_temperature:.3f}, age T={c.age_temperature:.3f}")
    if c.training:
        print(f"training:     {c.training.get('data', '')}")
        print(f"terms:        {c.training.get('terms', '')}")
    for k, v in c.metrics.items():
        print(f"metric:       {k} = {v}")
    for lim in c.limitations:
        print(f"limitation:   {lim}")
    return EXIT_OK



def register(sub: argparse._SubParsersAction) -> None:
    pr = sub.add_parser("predict", help="predict gender and age for images, folders or globs")
    pr.add_argument("inputs", nargs="+", metavar="PATH", help="image files, folders (recursive) or globs")
    pr.add_argument("--format", choices=["table", "json", "csv"], default="table")
    pr.add_argument("--output", "-o", metavar="FILE", help="write results here instead of standard output")
    pr.add_argument("--annotate", metavar="DIR", help="write copies with boxes and labels drawn into DIR")
    pr.add_argument("--aligned", action="store_true", help="each input is one already-cropped face (no detection)")
    pr.add_argument("--max-faces", type=int, default=None, metavar="N", help="at most N faces per image (largest)")
    pr.add_argument("--min-face-size", type=float, default=12.0, metavar="PX", help="ignore smaller faces")
    pr.add_argument("--score-threshold", type=float, default=0.7, metavar="P", help="detector confidence (0-1)")
    pr.add_argument("--threads", type=int, default=0, metavar="N", help="CPU threads (0: automatic)")
    pr.add_argument("--model", metavar="MODEL",
                    help="a shipped model name (agegender info --list), a model card, an ONNX file or a folder")
    pr.add_argument("--tta", action="store_true",
                    help="also run each face mirrored and average (a little more accurate, twice the model time; "
                         "the default model already does this inside its graph)")
    pr.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    pr.set_defaults(func=cmd_predict)

    inf = sub.add_parser("info", help="print the model card")
    inf.add_argument("--model", metavar="MODEL")
    inf.add_argument("--json", action="store_true", help="the raw card as JSON")
    inf.add_argument("--list", action="store_true", help="list the models shipped in the package")
    inf.set_defaults(func=cmd_info)
