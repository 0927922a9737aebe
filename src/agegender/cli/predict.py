"""``agegender predict`` and ``agegender info``: images in, faces out; the model card."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ..inputs import expand_inputs
from .common import (
    COUNT,
    EXIT_OK,
    EXIT_SOME_FAILED,
    OUT_DIR,
    OUT_FILE,
    PIXELS,
    PROBABILITY,
    THREADS,
    UsageError,
    progress_wanted,
    table_lines,
)


def _annotated_name(out_dir: Path, source: str, used: set[str]) -> Path:
    stem = Path(source).stem or "image"
    name = f"{stem}.jpg"
    k = 1
    while name in used:
        name = f"{stem}_{k}.jpg"
        k += 1
    used.add(name)
    return out_dir / name


def _progress(total: int, quiet: bool) -> tuple[Any, Callable[..., None]]:
    """A progress bar (only for more than five images, on a terminal) and how to print a line beside it."""
    if total > 5 and progress_wanted(quiet):
        from tqdm import tqdm  # only with a progress bar: importing tqdm costs start-up time

        return tqdm(total=total, unit="img", file=sys.stderr), tqdm.write

    def write_line(msg: str, file: IO[str] = sys.stderr) -> None:
        print(msg, file=file)

    return None, write_line


def _open_output(path: str | None) -> IO[str]:
    if not path:
        return sys.stdout
    try:
        return open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed by cmd_predict
    except OSError as exc:
        raise UsageError(f"--output {path}: cannot write ({exc.strerror})") from None


def _annotate_dir(path: str | None) -> Path | None:
    if not path:
        return None
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--annotate {path}: cannot create the folder ({exc.strerror})") from None
    return Path(path)


def cmd_predict(args: argparse.Namespace) -> int:
    from ..io import load_image
    from ..predictor import Predictor
    from ..rows import CSV_COLUMNS, csv_rows
    from ..types import Prediction

    if not args.inputs and not args.sample:
        raise UsageError("give image files, folders or globs (or --sample for the shipped sample photo)")
    if args.sample:
        from ..runtime import sample_photo

        args.inputs = [*args.inputs, str(sample_photo())]
    paths, missing = expand_inputs(args.inputs)
    if not paths and not missing:
        raise UsageError("no image files found in the given inputs")
    predictor = Predictor(model=args.model, threads=args.threads, max_faces=args.max_faces,
                          min_face_size=args.min_face_size, score_threshold=args.score_threshold, tta=args.tta)
    # the model loads (and is verified) inside iter_predict, on one core while the first images are decoded
    # and searched on the other; a model that cannot load still stops the run before any result
    ann_dir = _annotate_dir(args.annotate)
    out = _open_output(args.output)
    used: set[str] = set()
    writer = csv.writer(out, lineterminator="\n") if args.format == "csv" else None
    if writer:
        writer.writerow(CSV_COLUMNS)
    results_json = []
    failed = 0
    bar, write_error = _progress(len(paths), args.quiet)

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


def _scalar(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_scalar(v) for v in value)
    return str(value)


def _value_lines(key: str, value: object) -> list[str]:
    """``key = value`` for a plain value; for a mapping, its short values on one line and the rest below it,
    indented (no Python dicts on screen)."""
    if not isinstance(value, dict):
        return [f"{key} = {_scalar(value)}"]
    inline = {k: v for k, v in value.items() if not isinstance(v, dict) and len(_scalar(v)) <= 40}
    head = f"{key}: " + ", ".join(f"{k}={_scalar(v)}" for k, v in inline.items()) if inline else key
    lines = [head]
    for k, v in value.items():
        if k not in inline:
            lines += ["  " + line for line in _value_lines(str(k), v)]
    return lines


def _print_field(label: str, lines: list[str]) -> None:
    for i, line in enumerate(lines):
        print(f"{label + ':' if i == 0 else '':<14}{line}")


def cmd_info(args: argparse.Namespace) -> int:
    from ..runtime import ModelRuntime, builtin_models

    if args.list:
        models = builtin_models()
        width = max((len(n) for n in models), default=0)
        for name, card in models.items():
            print(f"{name:<{width}}  {card}")
        return EXIT_OK

    rt = ModelRuntime(args.model)
    c = rt.card
    if args.json:
        print(c.to_json())
        return EXIT_OK
    print(f"model:        {c.name} {c.version} ({c.architecture})")
    print(f"file:         {rt.path} (sha256 {c.sha256[:16]}…, verified)")
    print(f"input:        {c.input.size}x{c.input.size} {c.input.color}, mean {_scalar(c.input.mean)}, "
          f"std {_scalar(c.input.std)}")
    print(f"alignment:    5-point similarity, margin {c.alignment.margin}")
    for k, v in enumerate(c.alignment.views, start=2):
        print(f"view {k}:       the same face framed with margin {v.margin} ({v.border} past the photo)")
    print(f"ages:         {c.age_min}-{c.age_max}; interval = quantiles {_scalar(c.interval)}")
    print(f"calibration:  gender T={c.gender_temperature:.3f}, age T={c.age_temperature:.3f}")
    if c.training:
        print(f"training:     {c.training.get('data', '')}")
        print(f"terms:        {c.training.get('terms', '')}")
    for k, v in c.metrics.items():
        _print_field("metric", _value_lines(k, v))
    for lim in c.limitations:
        print(f"limitation:   {lim}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    pr = sub.add_parser("predict", help="predict gender and age for images, folders or globs")
    pr.add_argument("inputs", nargs="*", metavar="PATH", help="image files, folders (recursive) or globs")
    pr.add_argument("--sample", action="store_true",
                    help="also predict on the sample photo shipped in the package (a public-domain NASA portrait)")
    pr.add_argument("--format", choices=["table", "json", "csv"], default="table")
    pr.add_argument("--output", "-o", type=OUT_FILE, metavar="FILE",
                    help="write results here instead of standard output")
    pr.add_argument("--annotate", type=OUT_DIR, metavar="DIR", help="write copies with boxes and labels drawn into DIR")
    pr.add_argument("--aligned", action="store_true", help="each input is one already-cropped face (no detection)")
    pr.add_argument("--max-faces", type=COUNT, default=None, metavar="N", help="at most N faces per image (largest)")
    pr.add_argument("--min-face-size", type=PIXELS, default=12.0, metavar="PX", help="ignore smaller faces")
    pr.add_argument("--score-threshold", type=PROBABILITY, default=0.7, metavar="P", help="detector confidence (0-1)")
    pr.add_argument("--threads", type=THREADS, default=0, metavar="N", help="CPU threads (0: automatic)")
    pr.add_argument("--model", metavar="MODEL",
                    help="a shipped model name (agegender info --list), a model card, an ONNX file or a folder")
    pr.add_argument("--tta", action="store_true",
                    help="also run each face mirrored and average (twice the model time; a no-op for a model "
                         "whose graph already has the mirror pass)")
    pr.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    pr.set_defaults(func=cmd_predict)


def register_info(sub: argparse._SubParsersAction) -> None:
    inf = sub.add_parser("info", help="print the model card")
    inf.add_argument("--model", metavar="MODEL")
    inf.add_argument("--json", action="store_true", help="the raw card as JSON")
    inf.add_argument("--list", action="store_true", help="list the models shipped in the package")
    inf.set_defaults(func=cmd_info)
