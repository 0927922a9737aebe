"""A batch job from start to end: expand inputs, open the output folder, skip what is done, run an engine,
optionally compact, and sum up."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import AgeGenderError
from .inputs import expand
from .parts import FORMATS, Manifest, OutputDirError, PartStore, Totals
from .rows import ModelId, failure

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")


class BatchJobError(AgeGenderError):
    """The engine broke down (a worker process died, Ray failed); committed parts are kept, a rerun resumes."""


@dataclass(frozen=True)
class BatchConfig:
    """A batch job. ``workers=0``: one per CPU (local engine) or per CPU of the Ray instance/cluster."""

    inputs: Sequence[str]
    out_dir: str | Path
    engine: str = "local"
    ray_address: str | None = None
    batch_size: int = 128
    workers: int = 0
    model: str | None = None
    fmt: str = "parquet"
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


def _validate(cfg: BatchConfig) -> None:
    if cfg.engine not in ENGINES:
        raise ValueError(f"unknown engine {cfg.engine!r} (choose from {', '.join(ENGINES)})")
    if cfg.fmt not in FORMATS:
        raise ValueError(f"unknown format {cfg.fmt!r} (choose from {', '.join(FORMATS)})")
    if cfg.batch_size < 1:
        raise ValueError("batch size must be at least 1")
    if cfg.workers < 0 or cfg.threads < 0:
        raise ValueError("workers and threads must be >= 0")
    if cfg.ray_address and cfg.engine != "ray":
        raise ValueError("a Ray address needs the ray engine")


def run_batch(cfg: BatchConfig) -> BatchSummary:
    """Run (or resume) a batch job; see :mod:`agegender.scale.parts` for the output folder.

    Raises ``ValueError`` for a bad configuration or when the inputs name no image,
    :class:`OutputDirError` when the output folder cannot take the job.
    """
    from tqdm import tqdm

    from ..predictor import Predictor

    _validate(cfg)
    inputs = expand(list(cfg.inputs))
    if not inputs.keys and not inputs.missing:
        raise ValueError("no image files found in the given inputs")
    model = ModelId.of(Predictor(model=cfg.model).card)  # loads and verifies it before any work starts
    with PartStore(Path(cfg.out_dir), cfg.fmt, model) as store:
        done = store.done()
        pending = [k for k in inputs.keys if k not in done]
        missing = [(item, err) for item, err in inputs.missing if item not in done]
        skipped = len(inputs.keys) + len(inputs.missing) - len(pending) - len(missing)
        for _item, err in missing:
            log.warning("%s", err)
        if skipped:
            log.info("%d input(s) already done, skipped", skipped)
        tally = Totals()
        t0 = time.perf_counter()
        bar = tqdm(total=len(pending), unit="img", disable=not cfg.progress or not pending, file=sys.stderr,
                   smoothing=0.1)

        def count(m: Manifest) -> None:
            nonlocal tally
            tally = Totals(tally.images + m.images, tally.faces + m.faces, tally.failures + m.failures,
                           tally.rows + m.rows, tally.parts + 1)

        def on_part(m: Manifest) -> None:
            count(m)
            bar.update(m.images)
            bar.set_postfix(faces=tally.faces, failures=tally.failures, refresh=False)

        if missing:  # the items that named nothing: one error row each, in a part of their own
            count(store.commit([failure(item, err, model) for item, err in missing], workers=[]))

        workers, startup, nodes = cfg.workers, 0.0, ()
        try:
            if cfg.engine == "local":
                from .local import run_local

                workers = workers or os.cpu_count() or 1
                run_local(pending, store, cfg.model, workers, cfg.batch_size, cfg.threads, on_part)
            elif pending:  # no Ray start for nothing
                from .ray_engine import run_ray

                run = run_ray(pending, store, cfg.model, workers, cfg.batch_size, address=cfg.ray_address,
                              threads=cfg.threads, on_part=on_part)
                workers, startup, nodes = run.workers, run.init_seconds, run.nodes
        except (KeyboardInterrupt, AgeGenderError):
            raise
        except Exception as exc:  # BrokenProcessPool, Ray's errors: one line, the cause logged with --debug
            log.debug("engine failure", exc_info=True)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise BatchJobError(f"the {cfg.engine} engine failed ({type(exc).__name__}: {first}); "
                                f"{tally.images} image(s) were committed, rerun the same command to resume") from exc
        finally:
            bar.close()
        seconds = time.perf_counter() - t0
        if cfg.compact:
            store.compact()
        return BatchSummary(
            engine=cfg.engine, workers=workers, images=tally.images, faces=tally.faces, failures=tally.failures,
            skipped=skipped, seconds=seconds, startup_seconds=startup, nodes=nodes, total=store.totals(),
        )


def compact(out_dir: str | Path) -> Totals:
    """Merge the parts of an existing output folder into one file (format and model from ``_job.json``)."""
    import json

    from .parts import JOB_FILE

    job = Path(out_dir) / JOB_FILE
    if not job.is_file():
        raise OutputDirError(f"{out_dir}: not a batch output folder (no {JOB_FILE})")
    d = json.loads(job.read_text(encoding="utf-8"))
    with PartStore(Path(out_dir), d["format"], ModelId(**d["model"])) as store:
        store.compact()
        return store.totals()
