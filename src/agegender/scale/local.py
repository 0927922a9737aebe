"""The local engine: worker processes (one ONNX Runtime session each) that each compute and commit parts.

The driver hands out parts (lists of keys) to a pool of spawned processes, at most two per worker in
flight. Parts are cut as for the Ray engine (:func:`agegender.scale.ray_engine.plan`): at most
``batch_size`` inputs, and fewer when that gives every worker about ``TASKS_PER_ACTOR`` parts, so a small
job is spread over the whole pool too. Each worker writes and commits its own parts
(:func:`agegender.scale.parts.commit_part`), so rows never travel back through the driver. A worker holds
a shared lock on the output folder for its life and, on Linux, dies with the driver
(``PR_SET_PDEATHSIG``): a rerun after a SIGKILL never races a leftover worker of the killed run.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .parts import Manifest, PartStore, commit_part, hold_workers_lock, worker_id
from .ray_engine import plan  # the cutting rule only: that module imports no Ray at import time
from .worker import PartProcessor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartTask:
    out_dir: str
    name: str
    fmt: str
    keys: list[str]


# per-process state of a worker (set by _init_worker in the worker process)
_processor: PartProcessor | None = None
_lock: IO[str] | None = None
_driver_pid = 0


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            log.debug("prctl(PR_SET_PDEATHSIG) unavailable")


def _init_worker(out_dir: str, model: str | None, threads: int, driver_pid: int, log_level: int) -> None:
    global _processor, _lock, _driver_pid
    _die_with_parent()
    if os.getppid() != driver_pid:  # the driver died before prctl took effect
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    logging.basicConfig(level=log_level, format="%(levelname)s: %(message)s", stream=sys.stderr)
    logging.getLogger("agegender.predictor").setLevel(max(log_level, logging.ERROR))
    _driver_pid = driver_pid
    _lock = hold_workers_lock(Path(out_dir))
    _processor = PartProcessor(model=model, threads=threads)


def _run_part(task: PartTask) -> Manifest:
    assert _processor is not None, "worker not initialised"
    started = time.time()
    results = _processor.process(task.keys)
    finished = time.time()
    if os.getppid() != _driver_pid:  # orphaned (no PDEATHSIG on this platform): do not commit
        os._exit(1)
    return commit_part(Path(task.out_dir), task.name, task.fmt, results, workers=[worker_id()], started=started,
                       finished=finished)


def run_local(keys: list[str], store: PartStore, model: str | None, workers: int, batch_size: int,
              threads: int = 1, on_part: Callable[[Manifest], None] | None = None) -> None:
    """Process ``keys`` with ``workers`` processes (no more than parts), committing into ``store``; parts of
    at most ``batch_size`` keys, smaller for a small job so that every worker gets several."""
    if not keys:
        return
    p = plan(len(keys), max(1, workers), 1, batch_size)
    workers = p.actors
    chunks = (keys[i : i + p.part] for i in range(0, len(keys), p.part))
    log.debug("local engine: %d inputs in %d parts of at most %d, %d workers", len(keys), p.tasks, p.part,
              workers)
    ctx = mp.get_context("spawn")  # no fork: ONNX Runtime threads and locks do not survive it
    level = logging.getLogger().getEffectiveLevel()
    initargs = (str(store.out_dir), model, threads, os.getpid(), level)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=initargs) as ex:
        running: set[Future[Manifest]] = set()
        try:
            for chunk in chunks:
                task = PartTask(str(store.out_dir), store.next_name(), store.fmt, chunk)
                running.add(ex.submit(_run_part, task))
                if len(running) >= 2 * workers:
                    running = _collect(running, store, on_part)
            while running:
                running = _collect(running, store, on_part)
        except BaseException:
            for f in running:
                f.cancel()
            raise


def _collect(running: set[Future[Manifest]], store: PartStore,
             on_part: Callable[[Manifest], None] | None) -> set[Future[Manifest]]:
    done, pending = wait(running, return_when=FIRST_COMPLETED)
    for f in done:
        m = f.result()
        store.record(m)
        if on_part:
            on_part(m)
    return pending
