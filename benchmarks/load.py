"""Bounded load test of ``agegender serve``, on 127.0.0.1 only: requests/s and p50/p99 latency at 1, 4 and 16
concurrent clients, errors counted; then a server whose queue is smaller than the load, to show that the
excess gets 503 + Retry-After instead of failures.

Each scenario starts its own server (a subprocess on a free port of 127.0.0.1), sends a fixed number of
requests and stops it: the script ends by itself and never talks to another host.

    .venv/bin/python benchmarks/load.py [--requests 64] [--image PHOTO] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_name  # noqa: E402

HOST = "127.0.0.1"  # never anything else


@dataclass
class Outcome:
    latencies_ms: list[float] = field(default_factory=list)  # successful requests only
    rejected: int = 0  # 503 (queue full)
    errors: list[str] = field(default_factory=list)  # anything else: a status or a transport error
    seconds: float = 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """``agegender serve`` as a subprocess on 127.0.0.1, ready when /readyz says so."""

    def __init__(self, workers: int, queue: int, threads: int) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGEGENDER_")}
        cmd = [sys.executable, "-m", "agegender.cli", "serve", "--host", HOST, "--port", str(self.port),
               "--workers", str(workers), "--queue", str(queue), "--threads", str(threads), "--no-access-log"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited: {self.proc.stderr.read().decode(errors='replace')}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit("server not ready after 120 s")
            time.sleep(0.3)

    def stop(self) -> str:
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err.decode(errors="replace")


async def run_load(url: str, payload: bytes, clients: int, requests: int) -> Outcome:
    """``clients`` connections share ``requests`` requests (each sends its next one when the last returns)."""
    out = Outcome()
    todo = iter(range(requests))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def one_client() -> None:
            for _ in todo:
                t0 = time.perf_counter()
                try:
                    r = await client.post("/v1/predict", files={"file": ("photo.png", payload, "image/png")})
                except httpx.HTTPError as exc:
                    out.errors.append(type(exc).__name__)
                    continue
                ms = 1000 * (time.perf_counter() - t0)
                if r.status_code == 200 and r.json()["faces"]:
                    out.latencies_ms.append(ms)
                elif r.status_code == 503 and r.headers.get("retry-after"):
                    out.rejected += 1
                else:
                    out.errors.append(str(r.status_code))

        t0 = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        out.seconds = time.perf_counter() - t0
    return out


def row(name: str, workers: int, queue: int, clients: int, requests: int, o: Outcome) -> str:
    lat = np.asarray(o.latencies_ms) if o.latencies_ms else np.asarray([np.nan])
    ok = len(o.latencies_ms)
    return (f"| {name} | {workers} | {queue} | {clients} | {requests} | {ok} | {o.rejected} | {len(o.errors)} | "
            f"{ok / o.seconds:.1f} | {np.percentile(lat, 50):.0f} | {np.percentile(lat, 99):.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=64, help="requests per scenario (fixed: the test is bounded)")
    ap.add_argument("--image", type=Path, help="photo to send (default: scikit-image's astronaut.png, one face)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="inference workers of the server")
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per request")
    ap.add_argument("--clients", default="1,4,16", help="concurrency levels")
    ap.add_argument("--small-queue", type=int, default=2, help="queue of the overload scenario (1 worker)")
    args = ap.parse_args()
    if args.image is None:
        import skimage.data

        args.image = Path(skimage.data.__file__).parent / "astronaut.png"
    payload = args.image.read_bytes()
    levels = [int(c) for c in args.clients.split(",")]

    print(f"CPU: {cpu_name()} ({os.cpu_count()} cores); image {args.image.name} ({len(payload)} bytes); "
          f"{args.requests} requests per row, client and server on this machine\n")
    print("| scenario | workers | queue | clients | requests | ok | 503 | errors | ok req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    queue = 32
    srv = Server(args.workers, queue, args.threads)
    try:
        asyncio.run(run_load(srv.url, payload, 2, 4))  # warm-up, not counted
        for c in levels:
            o = asyncio.run(run_load(srv.url, payload, c, args.requests))
            print(row("normal", args.workers, queue, c, args.requests, o), flush=True)
    finally:
        log = srv.stop()
    srv = Server(1, args.small_queue, args.threads)
    try:
        c = max(levels)
        o = asyncio.run(run_load(srv.url, payload, c, args.requests))
        print(row("queue smaller than the load", 1, args.small_queue, c, args.requests, o), flush=True)
    finally:
        log += srv.stop()
    if "Traceback" in log:
        print("\nWARNING: the server logged a traceback", file=sys.stderr)


if __name__ == "__main__":
    main()
