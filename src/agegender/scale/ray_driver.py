"""The Ray driver of a batch job, in a child process that leads its own session; and its parent's side.

Why a child: everything Ray starts for a local instance descends from the process that calls ``ray.init``,
and some of it (the dashboard and runtime-env agents) outlives a SIGKILLed driver for a minute or more,
deaf to SIGTERM. A child in a session of its own gives all of it one session id, so the whole lot can be
ended (:mod:`agegender.scale.procs`); and its stderr can go to a log file, which is the only way to keep
Ray's C++ log lines (always copied to the driver's stderr) off the user's terminal.

Protocol: the parent writes one JSON line (:class:`DriverSpec`) to the child's stdin and keeps stdin open;
the child answers JSON lines on its stdout -- ``{"started": {"actors": N}}``, one ``{"block": ...}`` per
finished task (:meth:`Block.to_json`), then ``{"done": {}}`` or ``{"error": "one line"}`` -- after it has shut
Ray down and ended every other process of its session. When its stdin reaches EOF before the end (the
parent died, even by SIGKILL, or gave up), the child ends its session at once and exits.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from . import procs
from .ray_engine import Block

log = logging.getLogger(__name__)

#: how long the parent waits for the child to end Ray and exit once the job is over or abandoned
EXIT_TIMEOUT_S = 60


class RayDriverError(RuntimeError):
    """The Ray driver failed or died; its one-line reason (the details are in Ray's log)."""


@dataclass(frozen=True)
class DriverSpec:
    """The job the child drives (see :func:`agegender.scale.ray_engine.run_ray`)."""

    keys: list[str]
    model: str | None
    workers: int
    batch_size: int
    address: str | None
    threads: int
    object_store_memory: int
    debug: bool


# -- the parent's side ----------------------------------------------------------------------------------
class DriverProcess:
    """Starts the child, feeds it the job, yields its blocks; on exit makes sure its session is gone."""

    def __init__(self, spec: DriverSpec, log_path: Path | None) -> None:
        self.spec = spec
        self.log_path = log_path
        self.actors = 0
        self.init_seconds = 0.0
        self._log: IO[str] | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._t0 = 0.0

    def __enter__(self) -> DriverProcess:
        if self.log_path is not None:
            self._log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in __exit__
            self._log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} agegender batch: Ray driver "
                            f"({len(self.spec.keys)} input(s)) ====\n")
            self._log.flush()
        env = {**os.environ}
        env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self._t0 = time.perf_counter()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "agegender.scale.ray_driver"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=self._log, text=True, encoding="utf-8", env=env, start_new_session=procs.supported(),
            )
        except BaseException:
            if self._log is not None:
                self._log.close()
            raise
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(asdict(self.spec)) + "\n")
            self._proc.stdin.flush()
        except BrokenPipeError:  # it died at once: blocks() says so
            pass
        return self

    def _see_log(self) -> str:
        return f" (Ray's log: {self.log_path})" if self.log_path is not None else ""

    def blocks(self) -> Iterator[Block]:
        """The child's blocks as they come; raises :class:`RayDriverError` if it fails or dies."""
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                log.debug("ray driver: %s", line.rstrip())
                continue
            if "block" in msg:
                yield Block.from_json(msg["block"])
            elif "started" in msg:
                self.actors = int(msg["started"]["actors"])
                self.init_seconds = time.perf_counter() - self._t0
            elif "error" in msg:
                raise RayDriverError(f"{msg['error']}{self._see_log()}")
            elif "done" in msg:
                return
        code = self._proc.wait()
        raise RayDriverError(f"the Ray driver process exited with code {code} before the end of the job"
                             f"{self._see_log()}")

    def __exit__(self, *exc: object) -> None:
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.stdin.close()  # type: ignore[union-attr] - the child ends Ray and exits, if not done already
        try:
            proc.wait(timeout=EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("the Ray driver process did not exit within %d s: ending it", EXIT_TIMEOUT_S)
            proc.kill()
            proc.wait()
        if procs.supported():
            procs.end_session(proc.pid, grace=2.0)  # anything the child left (it died, or was killed)
        with contextlib.suppress(OSError):
            proc.stdout.close()  # type: ignore[union-attr]
        if self._log is not None:
            self._log.close()


# -- the child --------------------------------------------------------------------------------------------
def _teardown(code: int) -> None:
    """Parent gone or SIGTERM: end every other process of this session, then exit at once."""
    sid = procs.own_session()
    if sid is not None:
        procs.end_session(sid, grace=2.0)
    os._exit(code)


def _watch_parent(finished: threading.Event) -> None:
    """Read stdin to EOF; EOF before the job is finished means the parent is gone."""
    with contextlib.suppress(OSError):
        while os.read(0, 65536):  # the raw fd: a daemon thread must not hold sys.stdin's lock at exit
            pass
    if not finished.is_set():
        log.warning("the batch process is gone: ending Ray and this driver")
        _teardown(1)


def _shutdown_ray() -> None:
    try:
        import ray

        if ray.is_initialized():
            ray.shutdown()
    except Exception:  # noqa: BLE001 - the session sweep below ends what is left
        log.warning("ray.shutdown failed", exc_info=True)
    sid = procs.own_session()
    if sid is not None:
        procs.end_session(sid)


def _drive(spec: DriverSpec, send: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    from .ray_engine import iter_blocks, make_plan, start_ray

    start_ray(spec.address, spec.workers, spec.object_store_memory, spec.debug)
    p = make_plan(len(spec.keys), spec.workers, spec.batch_size)
    log.info("ray: %d actor(s), %d task(s) of at most %d input(s)", p.actors, p.tasks, p.part)
    send({"started": {"actors": p.actors}})
    for b in iter_blocks(spec.keys, spec.model, p, spec.threads):
        send({"block": b.to_json()})
    return {"done": {}}


def main() -> int:
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8")  # the protocol's own channel ...
    os.dup2(2, 1)  # ... and whatever Ray or a library prints goes where stderr goes (the log file)
    line = sys.stdin.readline()
    if not line:
        return 1
    spec = DriverSpec(**json.loads(line))
    logging.basicConfig(level=logging.DEBUG if spec.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    signal.signal(signal.SIGTERM, lambda *_: _teardown(143))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it closes our stdin
    finished = threading.Event()
    threading.Thread(target=_watch_parent, args=(finished,), daemon=True, name="parent-watch").start()

    def send(msg: dict[str, Any]) -> None:
        proto.write(json.dumps(msg) + "\n")
        proto.flush()

    try:
        final = _drive(spec, send)
    except BrokenPipeError:
        _teardown(1)
    except Exception as exc:  # noqa: BLE001 - reported to the parent in one line, in full in the log
        log.error("the Ray driver failed", exc_info=True)
        first = (str(exc).strip().splitlines() or [""])[0]
        final = {"error": f"{type(exc).__name__}: {first}" if first else type(exc).__name__}
    _shutdown_ray()
    finished.set()
    try:
        send(final)
    except BrokenPipeError:
        return 1
    return 0 if "done" in final else 1


if __name__ == "__main__":
    sys.exit(main())
