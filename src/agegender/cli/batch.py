"""``agegender batch``: predictions for many photos into a resumable, exactly-once output folder."""

from __future__ import annotations

import argparse
import sys

from .common import COUNT, EXIT_OK, EXIT_SOME_FAILED, OUT_DIR, THREADS, WORKERS, UsageError, progress_wanted


def cmd_batch(args: argparse.Namespace) -> int:
    from ..scale.job import BatchConfig, compact, run_batch
    from ..scale.parts import OutputDirError

    try:
        if not args.inputs:
            if not args.compact:
                raise UsageError("give at least one INPUT (or only --compact to merge an existing output)")
            t = compact(args.out)
            print(f"compacted: {t.images} image(s), {t.faces} face(s), {t.failures} failure(s) in {t.parts} part(s)",
                  file=sys.stderr)
            return EXIT_OK
        cfg = BatchConfig(
            inputs=args.inputs, out_dir=args.out, engine=args.engine, ray_address=args.ray_address,
            batch_size=args.batch_size, workers=args.workers, model=args.model, fmt=args.format,
            compact=args.compact, threads=args.threads, progress=progress_wanted(args.quiet),
        )
        summary = run_batch(cfg)
    except (ValueError, OutputDirError) as exc:
        raise UsageError(str(exc)) from exc
    for line in summary.lines():
        print(line, file=sys.stderr)
    return EXIT_SOME_FAILED if summary.total.failures else EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser(
        "batch", help="many photos into a resumable output folder (local processes or a Ray cluster)",
        description="Predict for every image of the inputs into Parquet/CSV/JSONL parts under --out. Parts are "
                    "committed atomically with a manifest: rerun the same command after any interruption and it "
                    "does only what is missing, each input exactly once.",
    )
    b.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="image files, folders (recursive), globs, list files (.txt/.csv/.lst: one path per line "
                        "or a path column) or URIs pyarrow can read (file://, s3://, ...)")
    b.add_argument("--out", type=OUT_DIR, required=True, metavar="DIR",
                   help="output folder (created; reused to resume)")
    b.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: worker processes on this machine; ray: a Ray Data actor pool (scale extra)")
    b.add_argument("--ray-address", metavar="ADDR",
                   help="join this Ray cluster (host:port or 'auto'); default: start a local Ray instance")
    b.add_argument("--batch-size", type=COUNT, default=128, metavar="N",
                   help="at most this many images per part (default 128; smaller parts for small jobs)")
    b.add_argument("--workers", type=WORKERS, default=0, metavar="N",
                   help="worker processes / Ray actors (default: one per CPU)")
    b.add_argument("--threads", type=THREADS, default=1, metavar="N",
                   help="ONNX Runtime threads per worker (default 1)")
    b.add_argument("--model", metavar="MODEL", help="a shipped model name, a model card, an ONNX file or a folder")
    b.add_argument("--format", choices=["parquet", "csv", "jsonl"], default=None,
                   help="format of the parts (default: the one the output folder holds; for a new one parquet, "
                        "or csv where pyarrow is not installed)")
    b.add_argument("--compact", action="store_true",
                   help="merge the parts into one file at the end (alone, with no INPUT: merge an existing output)")
    b.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    b.set_defaults(func=cmd_batch)
