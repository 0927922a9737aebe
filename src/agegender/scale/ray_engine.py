"""The Ray engine: Ray Data feeds the input keys to an actor pool of predictors; the driver commits parts.

Each actor (``num_cpus=1``) loads the model once and turns a batch of keys into one output row per input
(the input's rows JSON-encoded, so an input's rows never straddle two parts); the Ray driver streams these
blocks out of ``iter_batches`` and this process commits each as a part. Inputs are read by the actors from
their paths (a shared filesystem or any pyarrow URI), so a missing or unreadable file is one error row, not
a failed read stage. ``address=None`` starts a local Ray instance; otherwise the driver joins that cluster
and every node needs the same ``agegender`` installed.

The Ray driver runs in a child process (:mod:`agegender.scale.ray_driver`) that leads a session of its own,
so that (1) everything Ray starts on this machine -- GCS, raylet, its agents, the workers -- is ended with
the job, even when this process is SIGKILLed mid-job (the child sees its stdin close and ends its session),
and (2) Ray's own output (C++ log lines, its Python warnings, the workers' forwarded output) goes to
``OUT/_ray.log`` instead of the terminal, unless ``debug``. No dashboard web UI is started
(``include_dashboard=False``); Ray still runs its per-node agents and a headless API-server process, which
end with the job like the rest. Only when Ray is already initialised in this process (a library caller's own
``ray.init``) does the engine run in-process, on that instance, leaving its lifetime and logs to the caller.

Work is spread over the whole pool for small jobs too: a part holds at most ``batch_size`` inputs, and fewer
when that gives every actor about :data:`TASKS_PER_ACTOR` parts (:func:`plan`).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .parts import Manifest, PartStore, worker_id
from .rows import InputResult

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

#: object store of a local Ray instance (bytes): results are small, keep Ray's memory small
DEFAULT_OBJECT_STORE = 200 * 1024 * 1024
#: how long the driver waits for every actor of the pool to start (nodes joining, models loading)
ACTOR_START_TIMEOUT_S = 600
#: parts per actor a job is cut into when ``batch_size`` would give fewer (load balance of small jobs)
TASKS_PER_ACTOR = 4
#: Ray's own output (driver process, its local instance, forwarded worker output), in the output folder
RAY_LOG = "_ray.log"
_MAX_BLOCKS = 4096


@dataclass(frozen=True)
class RayRun:
    """What the driver saw: the actors' pool size and the seconds spent starting/joining Ray."""

    workers: int
    init_seconds: float
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """How a job is cut: ``actors`` in the pool, at most ``part`` inputs per task (= per output part)."""

    actors: int
    part: int
    tasks: int


def plan(n: int, requested: int, cluster_cpus: int, batch_size: int) -> Plan:
    """Pool size and part size for ``n`` inputs: ``requested`` actors (0: one per CPU of the cluster), parts
    of at most ``batch_size`` inputs and small enough for every actor to get :data:`TASKS_PER_ACTOR` of them,
    and no more actors than parts."""
    actors = max(1, requested or cluster_cpus)
    part = max(1, min(batch_size, math.ceil(n / (actors * TASKS_PER_ACTOR))))
    tasks = max(1, math.ceil(n / part))
    return Plan(actors=min(actors, tasks), part=part, tasks=tasks)


class RayPredictor:
    """The ``map_batches`` callable class: one per actor, the model loaded once."""

    def __init__(self, model: str | None, threads: int) -> None:
        import ray

        from .worker import PartProcessor

        logging.getLogger("agegender.predictor").setLevel(logging.ERROR)  # failures are logged by the driver
        self.processor = PartProcessor(model=model, threads=threads, log_failures=False)
        self.node_id = ray.get_runtime_context().get_node_id()
        self.worker = worker_id()

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        keys = batch.column("input").to_pylist()
        started = time.time()
        results = self.processor.process(keys)
        finished = time.time()
        n = len(results)
        return pa.table({
            "input": [r.key for r in results],
            "rows": [json.dumps(r.rows) for r in results],
            "faces": [r.faces for r in results],
            "failed": [r.failed for r in results],
            "node_id": [self.node_id] * n,
            "worker": [self.worker] * n,
            "started": [started] * n,
            "finished": [finished] * n,
        })


def _bound(model: str | None, threads: int) -> type:
    """:class:`RayPredictor` with its arguments bound (shipped with the class, not as actor arguments)."""

    class BoundRayPredictor(RayPredictor):
        def __init__(self) -> None:
            super().__init__(model, threads)

    return BoundRayPredictor


@dataclass(frozen=True)
class Block:
    """The results of one task: one output part."""

    results: list[InputResult]
    nodes: set[str]
    workers: set[str]
    started: float
    finished: float

    def to_json(self) -> dict[str, Any]:
        return {"results": [[r.key, r.rows, r.faces, r.failed] for r in self.results], "nodes": sorted(self.nodes),
                "workers": sorted(self.workers), "started": self.started, "finished": self.finished}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Block:
        results = [InputResult(key=k, rows=tuple(rows), faces=int(f), failed=bool(x)) for k, rows, f, x in d["results"]]
        return cls(results, set(d["nodes"]), set(d["workers"]), float(d["started"]), float(d["finished"]))


def _decode(block: pa.Table) -> Block:
    d = block.to_pydict()
    results = [InputResult(key=k, rows=tuple(json.loads(r)), faces=int(f), failed=bool(x))
               for k, r, f, x in zip(d["input"], d["rows"], d["faces"], d["failed"])]
    return Block(results, set(d["node_id"]), set(d["worker"]), min(d["started"], default=0.0),
                 max(d["finished"], default=0.0))


# -- in the Ray driver (the child process, or a caller's own Ray) -------------------------------------
def check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail fast (``ConnectionError``) when a ``host:port`` address takes no connection: Ray itself retries
    for minutes. Other forms (``auto``, ``ray://...``) are left to Ray."""
    host, _, port = address.rpartition(":")
    if not host or "/" in host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConnectionError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc})") from exc


def start_ray(address: str | None, workers: int, object_store_memory: int, debug: bool) -> None:
    """``ray.init``: join ``address``, or start a local instance of ``workers`` CPUs (0: all); no dashboard."""
    if address:
        check_reachable(address)
    import ray

    kwargs: dict[str, Any] = {"include_dashboard": False, "configure_logging": True,
                              "logging_level": logging.INFO if debug else logging.WARNING}
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=workers or os.cpu_count() or 1, object_store_memory=object_store_memory, **kwargs)


def make_plan(n: int, workers: int, batch_size: int) -> Plan:
    """:func:`plan` for the Ray instance this process is connected to."""
    import ray

    return plan(n, workers, int(ray.cluster_resources().get("CPU", 1)), batch_size)


def iter_blocks(keys: list[str], model: str | None, p: Plan, threads: int) -> Iterator[Block]:
    """The results of ``keys``, one :class:`Block` per task, as the actor pool finishes them."""
    import ray.data

    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled": ours show
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.wait_for_min_actors_s = ACTOR_START_TIMEOUT_S  # the whole pool loads its model before work is handed out
    ds = ray.data.from_items([{"input": k} for k in keys], override_num_blocks=min(p.tasks, _MAX_BLOCKS))
    ds = ds.map_batches(
        _bound(model, threads), batch_size=p.part, batch_format="pyarrow", num_cpus=1,
        compute=ray.data.ActorPoolStrategy(size=p.actors, max_tasks_in_flight_per_actor=2),
    )
    for block in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        b = _decode(block)
        if b.results:
            yield b


# -- in this process ------------------------------------------------------------------------------------
def _commit(b: Block, store: PartStore, on_part: Callable[[Manifest], None] | None) -> None:
    for r in b.results:
        if r.failed:
            log.warning("%s", r.error)
    m = store.commit(b.results, workers=b.workers, nodes=b.nodes, started=b.started, finished=b.finished)
    if on_part:
        on_part(m)


def _ray_running_here() -> bool:
    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


def run_ray(keys: list[str], store: PartStore, model: str | None, workers: int, batch_size: int,
            address: str | None = None, threads: int = 1, object_store_memory: int = DEFAULT_OBJECT_STORE,
            on_part: Callable[[Manifest], None] | None = None, debug: bool | None = None) -> RayRun:
    """Process ``keys`` on Ray (local instance, or the cluster at ``address``), committing into ``store``.

    ``workers``: actors in the pool (0: one per CPU of the instance or cluster). ``debug`` (default: the
    root logger is at DEBUG, as with ``agegender --debug``): Ray's own output goes to the terminal instead
    of ``OUT/_ray.log``. Raises ``ImportError`` without Ray, ``RuntimeError`` when the Ray driver fails.
    """
    if importlib.util.find_spec("ray") is None:
        raise ImportError("No module named 'ray'")
    if debug is None:
        debug = logging.getLogger().isEnabledFor(logging.DEBUG)
    if not keys:
        return RayRun(workers=0, init_seconds=0.0, nodes=())
    if _ray_running_here():
        return _run_in_process(keys, store, model, workers, batch_size, threads, on_part)
    from .ray_driver import DriverProcess, DriverSpec

    spec = DriverSpec(keys=keys, model=model, workers=workers, batch_size=batch_size, address=address,
                      threads=threads, object_store_memory=object_store_memory, debug=debug)
    nodes: set[str] = set()
    with DriverProcess(spec, log_path=None if debug else Path(store.out_dir) / RAY_LOG) as driver:
        for b in driver.blocks():
            _commit(b, store, on_part)
            nodes |= b.nodes
    return RayRun(workers=driver.actors, init_seconds=driver.init_seconds, nodes=tuple(sorted(nodes)))


def _run_in_process(keys: list[str], store: PartStore, model: str | None, workers: int, batch_size: int,
                    threads: int, on_part: Callable[[Manifest], None] | None) -> RayRun:
    """On the caller's own Ray instance (``ray.init`` already done in this process)."""
    p = make_plan(len(keys), workers, batch_size)
    nodes: set[str] = set()
    for b in iter_blocks(keys, model, p, threads):
        _commit(b, store, on_part)
        nodes |= b.nodes
    return RayRun(workers=p.actors, init_seconds=0.0, nodes=tuple(sorted(nodes)))
