"""``agegender batch --engine ray``: on a local Ray instance, and on a real two-node Ray cluster started on this
machine (two ``ray start`` processes, one CPU each), both against the local engine's rows."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agegender.cli import main
from agegender.scale.parts import read_rows
from test_batch import assert_exactly_once, assert_same_rows, make_photo_folder, manifests

pytest.importorskip("ray.data", reason="the Ray engine needs the scale extra (ray[data])")

OBJECT_STORE = str(200 * 1024 * 1024)  # bytes; the machine is shared, keep Ray small
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}


def ray_executable() -> str:
    exe = Path(sys.executable).parent / "ray"
    if not exe.is_file():
        pytest.skip("the `ray` command is not installed next to this Python")
    return str(exe)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalRayCluster:
    """A head and a worker node, each a ``ray start --block`` process in its own session and temporary folder,
    stopped by the process ids started here (the sessions' process groups), never by ``ray stop``."""

    def __init__(self, cpus_per_node: int = 1) -> None:
        self.cpus = str(cpus_per_node)
        self.port = free_port()
        self.procs: list[subprocess.Popen] = []
        self.dirs: list[tempfile.TemporaryDirectory] = []
        # token authentication off on both sides: a throwaway loopback cluster (newer Ray turns it on by default)
        self.env = {**os.environ, **RAY_ENV, "RAY_AUTH_MODE": "disabled"}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, *args: str) -> Path:
        tmp = tempfile.TemporaryDirectory(prefix="rt", dir="/tmp")  # short: Ray's socket paths have a length limit
        self.dirs.append(tmp)
        log = Path(tmp.name) / "start.log"
        cmd = [ray_executable(), "start", *args, "--num-cpus", self.cpus, "--object-store-memory", OBJECT_STORE,
               "--disable-usage-stats", "--temp-dir", tmp.name, "--block"]
        with open(log, "w") as fh:
            self.procs.append(subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=self.env,
                                               start_new_session=True))
        return log

    def _wait_started(self, log: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while "Ray runtime started" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start failed or timed out:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)

    def start(self) -> LocalRayCluster:
        head = self._start("--head", "--port", str(self.port), "--node-ip-address", "127.0.0.1",
                           "--include-dashboard", "false")
        self._wait_started(head, self.procs[0])
        worker = self._start("--address", self.address, "--node-ip-address", "127.0.0.1")
        self._wait_started(worker, self.procs[1])
        return self

    def stop(self) -> None:
        for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
            for p in self.procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, sig)  # the session (= process group) this ``ray start`` leads
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(_group_alive(p.pid) for p in self.procs):
                time.sleep(0.5)
        for p in self.procs:
            p.wait(timeout=10)
        for d in self.dirs:
            d.cleanup()

    def alive(self) -> bool:
        return any(_group_alive(p.pid) for p in self.procs)


def _group_alive(pgid: int) -> bool:
    """Any process of this group not yet a zombie."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut_path, coffee_path) -> tuple[Path, list[Path]]:
    folder = tmp_path_factory.mktemp("rayphotos")
    return folder, make_photo_folder(folder, astronaut_path, coffee_path, copies=4)


@pytest.fixture(scope="module")
def local_rows(photos, tmp_path_factory) -> list[dict[str, Any]]:
    folder, files = photos
    out = tmp_path_factory.mktemp("local") / "out"
    assert main(["batch", str(folder), "--out", str(out), "--workers", "1", "--batch-size", "4", "-q"]) == 1
    rows = read_rows(out)
    assert_exactly_once(rows, files)
    return rows


def run_ray_job(folder: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "agegender.cli", "batch", str(folder), "--out", str(out), "--engine", "ray",
           "--batch-size", "2", "-q", *extra]
    env = {**os.environ, **RAY_ENV}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


def test_ray_local_instance_gives_the_local_engine_rows(photos, local_rows, tmp_path):
    folder, files = photos
    out = tmp_path / "ray"
    r = run_ray_job(folder, out, "--workers", "2")
    assert r.returncode == 1, r.stderr[-3000:]  # the bad files failed, the rest were written
    assert "images/s (ray engine, 2 worker(s), 1 node(s))" in r.stderr
    rows = read_rows(out)
    assert_exactly_once(rows, files)
    assert_same_rows(rows, local_rows)
    ms = manifests(out)
    assert len(ms) > 1 and all(len(m.nodes) == 1 for m in ms)
    assert len({w for m in ms for w in m.workers}) == 2  # the pool starts whole, then both actors take parts


def test_two_node_cluster(photos, local_rows, tmp_path):
    folder, files = photos
    cluster = LocalRayCluster(cpus_per_node=1)
    try:
        cluster.start()
        out = tmp_path / "cluster"
        r = run_ray_job(folder, out, "--ray-address", cluster.address, "--workers", "2")
        assert r.returncode == 1, r.stderr[-3000:]
        assert "2 node(s)" in r.stderr
        ms = manifests(out)
        by_node = Counter(n for m in ms for n in m.nodes)
        assert len(by_node) == 2, by_node  # one actor per node (one CPU each): parts came from both
        rows = read_rows(out)
        assert_exactly_once(rows, files)
        assert_same_rows(rows, local_rows)
    finally:
        cluster.stop()
    assert not cluster.alive()
