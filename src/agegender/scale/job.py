"""A batch job from start to end: expand inputs, open the output folder, skip what is done, run an engine,
optionally compact, and sum up."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import AgeGenderError
from .inputs import expand
from .parts import FORMATS, Manifest, OutputDirError, PartStore, Totals, committed_job
from .rows import ModelId, failure

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
#: how to get the optional packages of batch jobs (Ray, pyarrow); the package is installed from its source
SCALE_HINT = "pip install '.[scale]' in the agegender source folder"


class BatchJobError(AgeGenderError):
    """The engine broke down (a worker process died, Ray failed); committed parts are kept, a rerun resumes."""


@dataclass(frozen=True)
class BatchConfig:
    """A batch job. ``workers=0``: one per CPU (local engine) or per CPU of the Ray instance/cluster.
    ``fmt=None``: the format the output folder already holds, else Parquet, or CSV where pyarrow is not
    installed (:func:`resolve_format`)."""

    inputs: Sequence[str]
    out_dir: str | Path
    engine: str = "local"
    ray_address: str | None = None
    batch_size: int = 128
    workers: int = 0
    model: str | None = None
    fmt: str | None = None
    compact: bool = False
    threads: int = 1
    progress: bool = True


@dataclass(frozen=True)
class BatchSummary:
    """What this run did (images, faces, failures, speed) and what the output folder now holds."""

    engine: str
    workers: int
    images: int
    faces: int
    failures: int
    skipped: int
    seconds: float
    startup_seconds: float
    nodes: tuple[str, ...]
    total: Totals

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        out = [
            f"{self.images} image(s), {self.faces} face(s), {self.failures} failure(s) in {self.seconds:.1f} s: "
            f"{self.images_per_s:.1f} images/s ({self.engine} engine, {self.workers} worker(s)"
            + (f", {len(self.nodes)} node(s)" if self.nodes else "") + ")",
        ]
        if self.skipped:
            out.append(f"{self.skipped} input(s) already done, skipped")
        t = self.total
        out.append(f"output: {t.images} image(s), {t.faces} face(s), {t.failures} failure(s) in {t.parts} part(s)")
        return out


def parquet_available() -> bool:
    """Whether pyarrow is installed (looked up, not imported: importing it costs a third of a second)."""
    return importlib.util.find_spec("pyarrow") is not None


def resolve_format(fmt: str | None, out_dir: str | Path) -> str:
    """The format of a job: ``fmt`` if given; else the one ``out_dir`` holds parts of; else Parquet, or CSV
    (with a warning) where pyarrow is not installed. Raises ``ValueError`` when the format needs pyarrow and
    it is missing, before anything is written."""
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    held = (committed_job(Path(out_dir)) or {}).get("format")
    if fmt is None and held in FORMATS:
        fmt = held
    if fmt is None:
        if parquet_available():
            return "parquet"
        log.warning("pyarrow is not installed: writing CSV parts (%s for Parquet)", SCALE_HINT)
        return "csv"
    if fmt == "parquet" and not parquet_available():
        if held == "parquet":
            raise ValueError(f"{out_dir}: holds parquet parts, which need pyarrow (not installed): {SCALE_HINT}, "
                             "or use another --out")
        raise ValueError(f"parquet needs pyarrow, which is not installed: {SCALE_HINT}, or choose --format csv "
                         "or jsonl")
    return fmt


def _validate(cfg: BatchConfig) -> None:
    if cfg.engine not in ENGINES:
        raise ValueError(f"unknown engine {cfg.engine!r} (choose from {', '.join(ENGINES)})")
    if cfg.fmt is not None and cfg.fmt not in FORMATS:
        raise ValueError(f"unknown format {cfg.fmt!r} (choose from {', '.join(FORMATS)})")
    if cfg.batch_size < 1:
        raise ValueError("batch size must be at least 1")
    if cfg.workers < 0 or cfg.threads < 0:
        raise ValueError("workers and threads must be >= 0")
    if cfg.ray_address and cfg.engine != "ray":
        raise ValueError("a Ray address needs the ray engine")
    if cfg.engine == "ray" and (importlib.util.find_spec("ray") is None or not parquet_available()):
        raise ValueError(f"the ray engine needs Ray and pyarrow, which are not installed: {SCALE_HINT}")


def engine_error(engine: str, exc: BaseException, committed: int) -> BatchJobError:
    """One line for an engine that broke down; "rerun to resume" only where a rerun can get further."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    what = f"the {engine} engine failed ({type(exc).__name__}: {first})"
    if isinstance(exc, ImportError):
        return BatchJobError(f"{what}: a package is missing; install it, then the same command "
                             + ("resumes" if committed else "starts again"))
    if committed:
        return BatchJobError(f"{what}; {committed} image(s) were committed: rerun the same command to resume")
    return BatchJobError(f"{what}; nothing was committed (--debug shows the cause)")


def run_batch(cfg: BatchConfig) -> BatchSummary:
    """Run (or resume) a batch job; see :mod:`agegender.scale.parts` for the output folder.

    Raises ``ValueError`` for a bad configuration, when the inputs name no image or when a package the job
    needs is missing, :class:`OutputDirError` when the output folder cannot take the job (all before
    anything is written), :class:`BatchJobError` when the engine breaks down.
    """
    from ..predictor import Predictor

    _validate(cfg)
    fmt = resolve_format(cfg.fmt, cfg.out_dir)
    inputs = expand(list(cfg.inputs))
    if not inputs.keys and not inputs.missing:
        raise ValueError("no image files found in the given inputs")
    model = ModelId.of(Predictor(model=cfg.model).card)  # loads and verifies it before any work starts
    with PartStore(Path(cfg.out_dir), fmt, model) as store:
        done = store.done()
        pending = [k for k in inputs.keys if k not in done]
        missing = [(item, err) for item, err in inputs.missing if item not in done]
        skipped = len(inputs.keys) + len(inputs.missing) - len(pending) - len(missing)
        for _item, err in missing:
            log.warning("%s", err)
        if skipped:
            log.info("%d input(s) already done, skipped", skipped)
        tally = _Tally(total=len(pending), progress=cfg.progress)
        t0 = time.perf_counter()
        if missing:  # the items that named nothing: one error row each, in a part of their own
            tally.count(store.commit([failure(item, err, model) for item, err in missing], workers=[]))
        try:
            workers, startup, nodes = _run_engine(cfg, pending, store, tally.on_part)
        finally:
            tally.close()
        seconds = time.perf_counter() - t0
        if cfg.compact:
            store.compact()
        t = tally.totals
        return BatchSummary(
            engine=cfg.engine, workers=workers, images=t.images, faces=t.faces, failures=t.failures,
            skipped=skipped, seconds=seconds, startup_seconds=startup, nodes=nodes, total=store.totals(),
        )


class _Tally:
    """What this run committed, and its progress bar (drawn only when asked and there is work)."""

    def __init__(self, total: int, progress: bool) -> None:
        self.totals = Totals()
        self.bar = None
        if progress and total:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="img", file=sys.stderr, smoothing=0.1)

    def count(self, m: Manifest) -> None:
        t = self.totals
        self.totals = Totals(t.images + m.images, t.faces + m.faces, t.failures + m.failures, t.rows + m.rows,
                             t.parts + 1)

    def on_part(self, m: Manifest) -> None:
        self.count(m)
        if self.bar is not None:
            self.bar.update(m.images)
            self.bar.set_postfix(faces=self.totals.faces, failures=self.totals.failures, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_engine(cfg: BatchConfig, pending: list[str], store: PartStore, on_part: Callable[[Manifest], None]
                ) -> tuple[int, float, tuple[str, ...]]:
    """Run the engine over ``pending``; (workers, seconds to start Ray, Ray nodes)."""
    committed = len(store.done())
    try:
        if cfg.engine == "local":
            from .local import run_local

            workers = cfg.workers or os.cpu_count() or 1
            run_local(pending, store, cfg.model, workers, cfg.batch_size, cfg.threads, on_part)
            return workers, 0.0, ()
        if not pending:  # no Ray start for nothing
            return cfg.workers, 0.0, ()
        from .ray_engine import run_ray

        run = run_ray(pending, store, cfg.model, cfg.workers, cfg.batch_size, address=cfg.ray_address,
                      threads=cfg.threads, on_part=on_part)
        return run.workers, run.init_seconds, run.nodes
    except (KeyboardInterrupt, AgeGenderError):
        raise
    except Exception as exc:  # BrokenProcessPool, Ray's errors: one line, the cause logged with --debug
        log.debug("engine failure", exc_info=True)
        raise engine_error(cfg.engine, exc, len(store.done()) - committed) from exc


def compact(out_dir: str | Path) -> Totals:
    """Merge the parts of an existing output folder into one file (format and model from ``_job.json``)."""
    from .parts import JOB_FILE, committed_manifests, read_job

    d = read_job(Path(out_dir))
    if d is None:
        raise OutputDirError(f"{out_dir}: not a batch output folder (no {JOB_FILE})")
    if not committed_manifests(Path(out_dir)):
        return Totals()  # nothing to merge
    with PartStore(Path(out_dir), resolve_format(d["format"], out_dir), ModelId(**d["model"])) as store:
        store.compact()
        return store.totals()
