"""The Ray engine: Ray Data feeds the input keys to an actor pool of predictors; the driver commits parts.

Each actor (``num_cpus=1``) loads the model once and turns a batch of keys into one output row per input
(the input's rows JSON-encoded, so an input's rows never straddle two parts); the driver streams these
blocks out of ``iter_batches`` and commits each as a part. Inputs are read by the actors from their
paths (a shared filesystem or any pyarrow URI), so a missing or unreadable file is one error row, not
a failed read stage. ``address=None`` starts a local Ray instance; otherwise the driver joins that
cluster and every node needs the same ``agegender`` installed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .parts import Manifest, PartStore, worker_id
from .rows import InputResult

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

#: object store of a local Ray instance (bytes): results are small, keep Ray's memory small
DEFAULT_OBJECT_STORE = 200 * 1024 * 1024
#: how long the driver waits for every actor of the pool to start (nodes joining, models loading)
ACTOR_START_TIMEOUT_S = 600


@dataclass(frozen=True)
class RayRun:
    """What the driver saw: the actors' pool size and the seconds spent starting/joining Ray."""

    workers: int
    init_seconds: float
    nodes: tuple[str, ...]


class RayPredictor:
    """The ``map_batches`` callable class: one per actor, the model loaded once."""

    def __init__(self, model: str | None, threads: int) -> None:
        import ray

        from .worker import PartProcessor

        logging.getLogger("agegender.predictor").setLevel(logging.ERROR)  # failures are logged once, below
        self.processor = PartProcessor(model=model, threads=threads)
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
class _Block:
    results: list[InputResult]
    nodes: set[str]
    workers: set[str]
    started: float
    finished: float


def _decode(block: pa.Table) -> _Block:
    d = block.to_pydict()
    results = [InputResult(key=k, rows=tuple(json.loads(r)), faces=int(f), failed=bool(x))
               for k, r, f, x in zip(d["input"], d["rows"], d["faces"], d["failed"])]
    return _Block(results, set(d["node_id"]), set(d["worker"]), min(d["started"], default=0.0),
                  max(d["finished"], default=0.0))


def _quiet_ray_logs() -> None:
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled": ours show


def run_ray(keys: list[str], store: PartStore, model: str | None, workers: int, batch_size: int,
            address: str | None = None, threads: int = 1, object_store_memory: int = DEFAULT_OBJECT_STORE,
            on_part: Callable[[Manifest], None] | None = None) -> RayRun:
    """Process ``keys`` on Ray (local instance, or the cluster at ``address``), committing into ``store``.

    ``workers``: actors in the pool (0: one per CPU of the instance or cluster).
    """
    import ray
    import ray.data

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    t0 = time.perf_counter()
    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict = {"include_dashboard": False, "logging_level": logging.WARNING, "configure_logging": True}
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=workers or os.cpu_count() or 1, object_store_memory=object_store_memory, **kwargs)
    _quiet_ray_logs()
    init_s = time.perf_counter() - t0
    try:
        size = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        ctx.wait_for_min_actors_s = ACTOR_START_TIMEOUT_S  # the whole pool loads its model before work is handed out
        nodes: set[str] = set()
        if keys:
            blocks = max(1, min(len(keys) // batch_size, 4096))
            ds = ray.data.from_items([{"input": k} for k in keys], override_num_blocks=blocks)
            ds = ds.map_batches(
                _bound(model, threads), batch_size=batch_size, batch_format="pyarrow", num_cpus=1,
                compute=ray.data.ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=2),
            )
            for block in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                b = _decode(block)
                if not b.results:
                    continue
                m = store.commit(b.results, workers=b.workers, nodes=b.nodes, started=b.started, finished=b.finished)
                nodes |= b.nodes
                if on_part:
                    on_part(m)
        return RayRun(workers=size, init_seconds=init_s, nodes=tuple(sorted(nodes)))
    finally:
        if started_here:
            ray.shutdown()
