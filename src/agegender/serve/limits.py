"""Bounded inference: a fixed pool of worker threads, a bounded number of waiting requests, a time limit.

A request takes a *slot* before its body is read; when ``workers + queue`` slots are taken it is refused
at once (503 with ``Retry-After``), so load never piles up uploads in memory. A request that runs out of
time gets 504; work that already started cannot be interrupted (a thread cannot be killed), so its slot is
only given back when that work ends: the bound holds even under time-outs.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TypeVar

from .errors import ApiError

R = TypeVar("R")


class Slot:
    """One admitted request; holds the future of its work so the slot outlives a time-out."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.future: Future | None = None

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


class InferencePool:
    def __init__(self, workers: int, queue: int, timeout_s: float) -> None:
        self.workers = workers
        self.capacity = workers + queue
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="agegender-serve")
        self._lock = threading.Lock()
        self._taken = 0
        self._mean_s = 0.2  # running mean of the time one job takes, for Retry-After

    @property
    def in_flight(self) -> int:
        return self._taken

    @property
    def full(self) -> bool:
        return self._taken >= self.capacity

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the queue drained by the workers at the mean job time."""
        return max(1, math.ceil(self._mean_s * self.capacity / self.workers))

    def _release(self, _: object = None) -> None:
        with self._lock:
            self._taken -= 1

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        """Admit one request or raise 503."""
        with self._lock:
            if self._taken >= self.capacity:
                admitted = False
            else:
                self._taken += 1
                admitted = True
        if not admitted:
            raise ApiError(503, f"server busy: {self.capacity} requests already in progress or waiting; retry later",
                           headers={"Retry-After": str(self.retry_after())})
        s = Slot(time.monotonic() + self.timeout_s)
        try:
            yield s
        finally:
            if s.future is None:
                self._release()
            else:  # called at once if the work is done, else when it ends
                s.future.add_done_callback(self._release)

    def _timed(self, fn: Callable[..., R], *args: object) -> R:
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self._mean_s = 0.9 * self._mean_s + 0.1 * (time.perf_counter() - t0)

    async def run(self, slot: Slot, fn: Callable[..., R], *args: object) -> R:
        """Run ``fn(*args)`` on a worker within the slot's deadline, else raise 504."""
        if slot.future is not None:
            raise RuntimeError("one job per slot")
        remaining = slot.remaining()
        if remaining <= 0:
            raise ApiError(504, f"request took longer than the time limit of {self.timeout_s:g} s")
        slot.future = self._executor.submit(self._timed, fn, *args)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(slot.future), remaining)
        except asyncio.TimeoutError:
            slot.future.cancel()  # drops it if still waiting for a worker
            raise ApiError(504, f"request took longer than the time limit of {self.timeout_s:g} s") from None

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
