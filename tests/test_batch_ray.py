"""``agegender batch --engine ray``: on a local Ray instance, and on a real two-node Ray cluster started on this
machine (two ``ray start`` processes, one CPU each), both against the local engine's rows; a small job spread
over the actors; no Ray process left after a SIGKILL of the driver and a rerun; Ray's own output in a log file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agegender.cli import main
from agegender.scale import procs
from agegender.scale.parts import read_rows
from agegender.scale.ray_engine import RAY_LOG, TASKS_PER_ACTOR, plan
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
    stopped by the sessions of the processes started here, never by ``ray stop``."""

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
        for p in self.procs:  # each ``ray start`` leads a session: its raylet, GCS, agents and workers (which
            procs.end_session(p.pid, grace=15.0)  # leave its process group) are all in it
        for p in self.procs:
            p.wait(timeout=10)
        for d in self.dirs:
            d.cleanup()

    def alive(self) -> bool:
        return any(p.poll() is None or procs.session_members(p.pid) for p in self.procs)


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


#: an environment variable every process of a test job inherits (Ray's included): how a test finds them
JOB_MARK = "AGEGENDER_TEST_RAY_JOB"


def batch_cmd(folder: Path, out: Path, *extra: str, debug: bool = False) -> list[str]:
    return [sys.executable, "-m", "agegender.cli", *(["--debug"] if debug else []), "batch", str(folder),
            "--out", str(out), "--engine", "ray", "-q", *extra]


def job_env(mark: str) -> dict[str, str]:
    return {**os.environ, **RAY_ENV, JOB_MARK: mark}


def run_ray_job(folder: Path, out: Path, *extra: str, mark: str = "", debug: bool = False
                ) -> subprocess.CompletedProcess:
    return subprocess.run(batch_cmd(folder, out, *extra, debug=debug), capture_output=True, text=True, timeout=600,
                          env=job_env(mark or uuid.uuid4().hex))


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _looks_like_ray(cmd: str) -> bool:
    return "ray::" in cmd or "/site-packages/ray/" in cmd or "agegender.scale.ray_driver" in cmd


def ray_processes(mark: str | None = None) -> set[int]:
    """Live (not zombie) processes of this user that are Ray's or our Ray driver's; with ``mark``: every
    process of that test job (its environment carries ``JOB_MARK=mark``), whatever it is."""
    uid, found = os.getuid(), set()
    for d in Path("/proc").glob("[0-9]*"):
        try:
            if d.stat().st_uid != uid or (d / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            if mark is not None and f"{JOB_MARK}={mark}".encode() not in (d / "environ").read_bytes().split(b"\0"):
                continue
        except (OSError, IndexError):
            continue  # gone meanwhile
        if mark is not None or _looks_like_ray(_cmdline(int(d.name))):
            found.add(int(d.name))
    return found


def wait_until_none(procs: Callable[[], set[int]], timeout: float) -> list[str]:
    """Poll ``procs`` until it finds none or ``timeout`` seconds pass; the last ones found, with their command."""
    deadline = time.monotonic() + timeout
    while (left := procs()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return [f"{p}: {_cmdline(p)[:150]}" for p in sorted(left)]


def assert_no_ray_output(stderr: str, folder: Path) -> None:
    """Only our own lines: one warning per bad file and the summary; nothing from Ray (C++ log lines, its
    Python warnings, output forwarded from the actors)."""
    ours = ("WARNING: " + str(folder), "output: ")
    for line in stderr.splitlines():
        if line.strip() and not line.startswith(ours) and " image(s), " not in line and "already done" not in line:
            pytest.fail(f"a line on stderr that is not ours: {line!r}\n{stderr[-3000:]}")


def test_plan_spreads_small_jobs_and_keeps_parts_of_large_ones():
    for n in (1, 3, 11, 200, 1000, 100_000):
        for requested, cpus in ((0, 2), (2, 16), (8, 1), (16, 16)):
            for batch in (1, 2, 128):
                p, actors = plan(n, requested, cpus, batch), requested or cpus
                assert 1 <= p.part <= batch and p.tasks == -(-n // p.part), (n, requested, cpus, batch, p)
                assert p.actors == min(actors, p.tasks)  # no actor that could get no work
                if n >= actors * TASKS_PER_ACTOR * batch:
                    assert p.part == batch, p  # a large job: parts of the batch size
                if p.part < batch:
                    assert 2 * p.tasks >= min(n, actors * TASKS_PER_ACTOR), p  # a small one: work for every actor


def test_ray_local_instance_gives_the_local_engine_rows_from_every_actor(photos, local_rows, tmp_path):
    folder, files = photos
    out = tmp_path / "ray"
    r = run_ray_job(folder, out, "--workers", "2")  # the default batch size (128) is far above this small job
    assert r.returncode == 1, r.stderr[-3000:]  # the bad files failed, the rest were written
    assert "images/s (ray engine, 2 worker(s), 1 node(s))" in r.stderr
    assert_no_ray_output(r.stderr, folder)
    assert "Ray driver" in (out / RAY_LOG).read_text()
    rows = read_rows(out)
    assert_exactly_once(rows, files)
    assert_same_rows(rows, local_rows)
    ms = manifests(out)
    assert len(ms) >= 2 * 2 and all(len(m.nodes) == 1 for m in ms)  # cut into parts for both actors ...
    workers = Counter(w for m in ms for w in m.workers)
    assert len(workers) == 2, workers  # ... and both took parts (the pool starts whole, then hands out work)


def test_two_node_cluster(photos, local_rows, tmp_path):
    folder, files = photos
    cluster = LocalRayCluster(cpus_per_node=1)
    try:
        cluster.start()
        out = tmp_path / "cluster"
        r = run_ray_job(folder, out, "--ray-address", cluster.address, "--workers", "2", "--batch-size", "2",
                        debug=True)
        assert r.returncode == 1, r.stderr[-3000:]
        assert "2 node(s)" in r.stderr
        assert not (out / RAY_LOG).exists()  # --debug: Ray's output on the terminal, no log file
        ms = manifests(out)
        by_node = Counter(n for m in ms for n in m.nodes)
        assert len(by_node) == 2, by_node  # one actor per node (one CPU each): parts came from both
        rows = read_rows(out)
        assert_exactly_once(rows, files)
        assert_same_rows(rows, local_rows)
    finally:
        cluster.stop()
    assert not cluster.alive()


@pytest.fixture(scope="module")
def more_photos(tmp_path_factory, astronaut_path, coffee_path) -> tuple[Path, list[Path]]:
    folder = tmp_path_factory.mktemp("raykill")
    return folder, make_photo_folder(folder, astronaut_path, coffee_path, copies=12)


def _kill_mid_job(folder: Path, out: Path, mark: str, log: Path) -> list[str]:
    """Start a job, SIGKILL its ``agegender batch`` process once a part is committed; the command lines of the
    job's processes then, read before the kill (a worker can be gone a moment after it)."""
    with open(log, "w") as fh:
        proc = subprocess.Popen(batch_cmd(folder, out, "--workers", "1", "--batch-size", "1"), stdout=fh,
                                stderr=subprocess.STDOUT, env=job_env(mark))
    try:
        deadline = time.monotonic() + 300
        while not any((out / "_manifests").glob("*.json")):  # no part committed yet
            assert proc.poll() is None, f"the job ended before a part was committed:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no part committed in 300 s"
            time.sleep(0.2)
        running = [_cmdline(p) for p in ray_processes(mark)]
        assert proc.poll() is None, "the job ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    return running


@pytest.mark.skipif(not Path("/proc/self/environ").is_file(), reason="finds a job's processes through /proc")
def test_sigkill_of_the_driver_then_rerun_leaves_no_ray_process(more_photos, tmp_path):
    folder, files = more_photos
    out, first, second = tmp_path / "out", uuid.uuid4().hex, uuid.uuid4().hex
    before = ray_processes()

    commands = _kill_mid_job(folder, out, first, tmp_path / "killed.log")
    assert any("raylet" in c for c in commands) and any("ray::" in c for c in commands), commands  # Ray was up
    assert not [c for c in commands if "dashboard.py" in c and "--disable-frontend" not in c], commands  # no UI
    assert not (left := wait_until_none(lambda: ray_processes(first), 20)), left  # gone well before a rerun
    assert 0 < len(read_rows(out)) < len(files)  # killed mid-job

    r = run_ray_job(folder, out, "--workers", "1", mark=second)  # the rerun finishes the job
    assert r.returncode == 1, r.stderr[-3000:]
    assert "already done, skipped" in r.stderr
    assert_no_ray_output(r.stderr, folder)
    assert_exactly_once(read_rows(out), files)
    assert (out / RAY_LOG).read_text().count("Ray driver") == 2  # both runs logged there

    def left_behind() -> set[int]:
        return ray_processes(first) | ray_processes(second) | (ray_processes() - before)

    assert not (left := wait_until_none(left_behind, 15)), left


def test_an_unreachable_cluster_is_one_line_and_no_wait(photos, tmp_path):
    folder, _ = photos
    port = free_port()  # nothing listens there
    r = run_ray_job(folder, tmp_path / "out", "--ray-address", f"127.0.0.1:{port}")
    assert r.returncode == 1, r.stderr[-3000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agegender: error:"), r.stderr[-3000:]
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in lines[0]
