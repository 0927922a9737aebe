"""``agegender batch`` with the local engine on real photos and bad files: rows, formats, resume after SIGKILL,
recovery of interrupted commits and compactions, list files and URIs."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from _blocked import env_without
from agegender.cli import main
from agegender.rows import CSV_COLUMNS
from agegender.scale.job import engine_error
from agegender.scale.parts import JOB_FILE, MANIFEST_DIR, TMP, Manifest, PartStore, commit_part, read_rows
from agegender.scale.rows import COLUMNS, ModelId, failure
from conftest import truncated_jpeg_bytes

BAD = {"junk.jpg": "not a recognised image format", "empty.png": "empty file", "truncated.jpg": "cannot decode"}
#: one unit of the last digit ``predict --format csv`` prints, per numeric column
TOLERANCE = {"x1": 0.1, "y1": 0.1, "x2": 0.1, "y2": 0.1, "det_score": 1e-4, "p_female": 1e-4, "age": 0.1,
             "age_low": 0.1, "age_high": 0.1}


def make_photo_folder(folder: Path, astronaut_path: Path, coffee_path: Path, copies: int = 8,
                      utkface: Path | None = None, n_utkface: int = 0) -> list[Path]:
    """Copies of the astronaut (as PNG, JPEG and mirrored) and of the coffee cup, bad files, and UTKFace crops
    (copied) when given; returns every file, bad ones included."""
    sub = folder / "sub"
    sub.mkdir(parents=True)
    with Image.open(astronaut_path) as im:
        astro = im.convert("RGB")
    with Image.open(coffee_path) as im:
        coffee = im.convert("RGB")
    files = []
    for i in range(copies):
        d = folder if i % 2 else sub
        a = d / f"astronaut_{i}.{'png' if i % 3 == 0 else 'jpg'}"
        img = astro.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if i % 4 == 1 else astro
        img.save(a, quality=85 + i) if a.suffix == ".jpg" else shutil.copy(astronaut_path, a)
        c = d / f"coffee_{i}.jpg"
        coffee.save(c, quality=80 + i)
        files += [a, c]
    (folder / "junk.jpg").write_text("not an image\n")
    (folder / "empty.png").write_bytes(b"")
    (sub / "truncated.jpg").write_bytes(truncated_jpeg_bytes())
    files += [folder / "junk.jpg", folder / "empty.png", sub / "truncated.jpg"]
    if utkface is not None and n_utkface:
        names = sorted(os.listdir(utkface))
        step = max(1, len(names) // n_utkface)
        for name in names[::step][:n_utkface]:
            shutil.copy(utkface / name, folder / name)
            files.append(folder / name)
    return files


def by_file(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["file"], []).append(r)
    return {k: sorted(v, key=lambda r: -1 if r["face"] is None else r["face"]) for k, v in out.items()}


def assert_exactly_once(rows: list[dict[str, Any]], files: list[Path]) -> None:
    """Every file has its rows once: faces numbered 0..n-1 with no repeat, or one row without a face."""
    grouped = by_file(rows)
    assert set(grouped) == {str(f.resolve()) for f in files}
    for name, rs in grouped.items():
        faces = [r["face"] for r in rs]
        assert faces == [None] or faces == list(range(len(rs))), (name, faces)


def assert_same_rows(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    """Same files, same faces, same labels; numbers equal within one unit of the last printed digit."""
    ga, gb = by_file(a), by_file(b)
    assert ga.keys() == gb.keys()
    for name in ga:
        assert len(ga[name]) == len(gb[name]), name
        for ra, rb in zip(ga[name], gb[name]):
            for col in COLUMNS:
                if col in TOLERANCE and ra[col] is not None and rb[col] is not None:
                    assert abs(ra[col] - rb[col]) <= TOLERANCE[col] + 1e-9, (name, col, ra[col], rb[col])
                else:
                    assert ra[col] == rb[col], (name, col, ra[col], rb[col])


def manifests(out: Path) -> list[Manifest]:
    return [Manifest.from_json(p.read_text()) for p in sorted((out / MANIFEST_DIR).glob("*.json"))
            if not p.name.startswith(TMP)]  # committed ones only


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agegender.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut_path, coffee_path) -> tuple[Path, list[Path]]:
    folder = tmp_path_factory.mktemp("photos")
    return folder, make_photo_folder(folder, astronaut_path, coffee_path, copies=4)


@pytest.fixture(scope="module")
def reference(photos, tmp_path_factory) -> list[dict[str, Any]]:
    """The rows of one uninterrupted local run (2 workers, parts of 4 images), as Parquet."""
    folder, _ = photos
    out = tmp_path_factory.mktemp("ref") / "out"
    assert main(["batch", str(folder), "--out", str(out), "--workers", "2", "--batch-size", "4", "-q"]) == 1
    return read_rows(out)


def test_rows_are_the_predict_csv_rows_plus_the_model(photos, reference, tmp_path, capsys):
    folder, files = photos
    assert_exactly_once(reference, files)
    pred_csv = tmp_path / "predict.csv"
    assert main(["predict", *map(str, files), "--format", "csv", "--output", str(pred_csv), "--threads", "1",
                 "-q"]) == 1
    with open(pred_csv, newline="") as f:
        predicted = [dict(zip(CSV_COLUMNS, r)) for r in list(csv.reader(f))[1:]]
    for r in predicted:
        r["file"] = str(Path(r["file"]).resolve())
    from agegender.scale.rows import typed

    expected = [typed([*(r[c] for c in CSV_COLUMNS), "", "", ""]) for r in predicted]
    assert_same_rows([{**r, "model": None, "model_version": None, "model_sha256": None} for r in reference], expected)

    from agegender import Predictor

    card = Predictor().card
    assert {(r["model"], r["model_version"], r["model_sha256"]) for r in reference} == {
        (card.name, card.version, card.sha256)}
    grouped = by_file(reference)
    for f in files:
        rs = grouped[str(f.resolve())]
        if f.name.startswith("astronaut"):
            assert len(rs) == 1 and rs[0]["face"] == 0 and rs[0]["gender"] in ("male", "female") and not rs[0]["error"]
        elif f.name.startswith("coffee"):  # no face: one row, every field but the file (and model) empty
            assert len(rs) == 1 and all(rs[0][c] is None for c in CSV_COLUMNS[1:])
        else:
            assert len(rs) == 1 and BAD[f.name] in rs[0]["error"] and rs[0]["face"] is None


def test_summary_and_exit_code(photos, tmp_path):
    folder, files = photos
    r = run_cli("batch", str(folder), "--out", str(tmp_path / "o"), "--workers", "1", "--batch-size", "8")
    assert r.returncode == 1, r.stderr  # some inputs failed, all others written
    n_faces = sum(f.name.startswith("astronaut") for f in files)
    assert f"{len(files)} image(s), {n_faces} face(s), {len(BAD)} failure(s)" in r.stderr
    assert "images/s" in r.stderr
    for name in BAD:  # each failure reported on its own line
        assert any(name in line and BAD[name] in line for line in r.stderr.splitlines())
    again = run_cli("batch", str(folder), "--out", str(tmp_path / "o"), "--workers", "1")
    assert again.returncode == 1
    assert "0 image(s)" in again.stderr and f"{len(files)} input(s) already done, skipped" in again.stderr


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_formats_hold_the_same_rows(photos, reference, tmp_path, fmt):
    folder, files = photos
    out = tmp_path / fmt
    assert main(["batch", str(folder), "--out", str(out), "--format", fmt, "--workers", "2", "--batch-size", "4",
                 "-q"]) == 1
    assert {p.suffix for p in out.iterdir() if p.is_file() and not p.name.startswith((".", "_"))} == {f".{fmt}"}
    assert_same_rows(read_rows(out), reference)
    if fmt == "csv":  # the header is the predict columns plus the model's
        first = next(p for p in out.iterdir() if p.suffix == ".csv")
        assert first.read_text().splitlines()[0] == ",".join(COLUMNS)


def test_a_small_job_is_cut_into_several_parts_per_worker(photos, reference, tmp_path):
    """With the default --batch-size (128) a small job would be one part, one busy worker: it is cut so that
    every worker gets several parts, each within --batch-size, with the same rows as parts of 4."""
    folder, files = photos
    out, workers = tmp_path / "out", 2
    assert main(["batch", str(folder), "--out", str(out), "--workers", str(workers), "-q"]) == 1
    ms = manifests(out)
    assert len(ms) >= 2 * workers, [len(m.inputs) for m in ms]
    covered = Counter(k for m in ms for k in m.inputs)
    assert set(covered) == {str(f.resolve()) for f in files} and set(covered.values()) == {1}
    assert_same_rows(read_rows(out), reference)

    capped = tmp_path / "capped"
    assert main(["batch", str(folder), "--out", str(capped), "--workers", "1", "--batch-size", "2", "-q"]) == 1
    assert max(len(m.inputs) for m in manifests(capped)) == 2  # never above --batch-size


def test_compact_merges_parts_and_rerun_still_skips(photos, reference, tmp_path):
    folder, files = photos
    out = tmp_path / "c"
    assert main(["batch", str(folder), "--out", str(out), "--workers", "2", "--batch-size", "3", "-q"]) == 1
    assert len(manifests(out)) > 2
    assert main(["batch", "--compact", "--out", str(out)]) == 0
    ms = manifests(out)
    assert len(ms) == 1 and ms[0].replaces and len(ms[0].inputs) == len(files)
    assert [p.name for p in out.glob("*.parquet")] == [ms[0].file]
    import pyarrow.parquet as pq

    assert pq.read_table(out).num_rows == len(reference)  # the folder reads as one dataset
    assert_same_rows(read_rows(out), reference)
    # a rerun (with --compact again) finds nothing to do and leaves one file
    assert main(["batch", str(folder), "--out", str(out), "--compact", "-q"]) == 1
    assert len(manifests(out)) == 1 and len(list(out.glob("*.parquet"))) == 1


def test_sigkill_then_rerun_gives_every_input_once(tmp_path, astronaut_path, coffee_path):
    folder = tmp_path / "photos"
    utk = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "utkface"
    files = make_photo_folder(folder, astronaut_path, coffee_path, copies=12,
                              utkface=utk if utk.is_dir() else None, n_utkface=16)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "agegender.cli", "batch", str(folder), "--out", str(out), "--workers", "2",
           "--batch-size", "2", "-q"]
    job = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not list((out / MANIFEST_DIR).glob("part-*.json")) if out.exists() else True:
        assert job.poll() is None, job.stderr.read().decode() if job.stderr else ""
        assert time.monotonic() < deadline, "no part was committed in 5 minutes"
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)  # the driver only: its workers die with it (PR_SET_PDEATHSIG)
    job.wait()
    job.stderr.close()
    assert job.returncode == -signal.SIGKILL
    done_before = {k for m in manifests(out) for k in m.inputs}
    assert 0 < len(done_before) < len(files), "the job must be killed half-way"

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 1 and "output: " in rerun.stderr, rerun.stderr  # finished, with the bad files failed
    assert "already done, skipped" in rerun.stderr
    assert not [p for p in out.iterdir() if p.name.startswith(TMP)]
    ms = manifests(out)
    covered = Counter(k for m in ms for k in m.inputs)
    assert {k for k, n in covered.items() if n > 1} == set(), "duplicated"
    assert {str(f.resolve()) for f in files} - set(covered) == set(), "missing"
    assert set(covered) - {str(f.resolve()) for f in files} == set(), "unexpected"
    assert len({p.name for p in out.glob("*.parquet")}) == len(ms)
    rows = read_rows(out)
    assert_exactly_once(rows, files)
    assert sum(m.rows for m in ms) == len(rows)


def _results(store: PartStore, keys: list[str]) -> list:
    return [failure(k, f"{k}: made up for the recovery test", store.model) for k in keys]


def test_recovery_of_interrupted_commits_and_compaction(tmp_path):
    """The states a SIGKILL can leave (found by stopping the commit protocol at each step) are all repaired."""
    model = ModelId("m", "1", "0" * 64)
    out = tmp_path / "o"
    with PartStore(out, "jsonl", model) as store:
        store.commit(_results(store, ["a", "b"]))
        # killed after the manifest (commit point), before the data file's rename: rolled forward
        m = commit_part(out, store.next_name(), "jsonl", _results(store, ["c"]))
        os.replace(out / m.file, out / f"{TMP}{m.file}")
        # killed before the manifest: the temporary data file is dropped, its input redone
        n = commit_part(out, store.next_name(), "jsonl", _results(store, ["d"]))
        os.replace(out / n.file, out / f"{TMP}{n.file}")
        (out / MANIFEST_DIR / f"{n.name}.json").unlink()
        (out / MANIFEST_DIR / f"{TMP}x.json").write_text("{half a manifest")
        # killed after the manifest's temporary file was written in full, before its rename: not committed
        q = commit_part(out, store.next_name(), "jsonl", _results(store, ["e"]))
        os.replace(out / q.file, out / f"{TMP}{q.file}")
        os.replace(out / MANIFEST_DIR / f"{q.name}.json", out / MANIFEST_DIR / f"{TMP}{q.name}.json")
    with PartStore(out, "jsonl", model) as store:
        assert store.done() == {"a", "b", "c"}
        assert sorted(p.name for p in out.iterdir() if p.suffix == ".jsonl") == sorted(
            x.file for x in store.manifests)
        assert not [p for p in out.rglob(f"{TMP}*")]
        store.commit(_results(store, ["d"]))
        parts = store.manifests
    # a compaction killed after its commit point: before its data file's rename, or before removing the parts
    # it replaces. Made from a real compaction: its manifest and data file put into a copy of the folder before.
    before = tmp_path / "before"
    shutil.copytree(out, before)
    with PartStore(out, "jsonl", model) as store:
        c = store.compact()
        assert c is not None and len(store.manifests) == 1
    for renamed in (False, True):
        state = tmp_path / f"killed-{renamed}"
        shutil.copytree(before, state)
        shutil.copy(out / MANIFEST_DIR / f"{c.name}.json", state / MANIFEST_DIR)
        shutil.copy(out / c.file, state / (c.file if renamed else f"{TMP}{c.file}"))
        assert len(manifests(state)) == len(parts) + 1
        with PartStore(state, "jsonl", model) as store:
            assert [m.name for m in store.manifests] == [c.name]
            assert store.totals().images == 4
        assert sorted(p.name for p in state.iterdir() if p.suffix == ".jsonl") == [c.file]
        assert sorted(r["file"] for r in read_rows(state)) == ["a", "b", "c", "d"]


def test_output_folder_guards(photos, tmp_path, capsys):
    folder, _ = photos
    out = tmp_path / "g"
    one = str(next(folder.glob("astronaut_1.*")))
    assert main(["batch", one, "--out", str(out), "--format", "csv", "-q"]) == 0
    capsys.readouterr()
    assert main(["batch", one, "--out", str(out), "--format", "jsonl", "-q"]) == 2
    assert "holds csv parts; rerun with --format csv" in capsys.readouterr().err
    assert main(["batch", one, "--out", str(out), "--format", "csv", "--model", "fast", "-q"]) == 2
    assert "made with model" in capsys.readouterr().err
    from agegender.scale.rows import ModelId as Mid

    with PartStore(out, "csv", Mid(**json.loads((out / "_job.json").read_text())["model"])):
        assert main(["batch", one, "--out", str(out), "--format", "csv", "-q"]) == 2
        assert "another batch job is writing to this folder" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["batch", "--out", "o"], "give at least one INPUT"),
    (["batch", "x.jpg", "--out", "o", "--ray-address", "127.0.0.1:1"], "needs the ray engine"),
    (["batch", "x.jpg", "--out", "o", "--batch-size", "0"], "--batch-size: must be at least 1"),
    (["batch", "x.jpg", "--out", "x.jpg/o"], "--out: x.jpg/o: cannot create a folder under"),
    (["batch", "--compact", "--out", "nowhere"], "not a batch output folder"),
])
def test_usage_errors(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.jpg").write_bytes(b"")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_list_files_globs_and_uris(photos, reference, tmp_path, capsys):
    folder, files = photos
    good = [f for f in files if f.name.startswith(("astronaut", "coffee"))]
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "some.txt").write_text("# a comment\n\n" + "\n".join(os.path.relpath(f, lists) for f in good[:3])
                                    + "\nmissing.jpg\n")
    with open(lists / "more.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["label", "path"])
        w.writerows([["x", str(f)] for f in good[2:5]])  # good[2] is in both lists: done once
    uri_dir = tmp_path / "uri"
    uri_dir.mkdir()
    shutil.copy(good[0], uri_dir / good[0].name)
    out = tmp_path / "o"
    argv = ["batch", str(lists / "some.txt"), str(lists / "more.csv"), f"file://{uri_dir}",
            str(folder / "sub" / "coffee_*.jpg"), str(tmp_path / "nothing_*.png"), "--out", str(out), "--format",
            "jsonl", "--workers", "1", "-q"]
    assert main(argv) == 1
    rows = by_file(read_rows(out))
    coffees = {str(f) for f in (folder / "sub").glob("coffee_*.jpg")}
    uri = f"file://{uri_dir / good[0].name}"
    assert set(rows) == {str(f) for f in good[:5]} | coffees | {str(lists / "missing.jpg"), uri,
                                                                str(tmp_path / "nothing_*.png")}
    assert "no such file" in rows[str(lists / "missing.jpg")][0]["error"]
    assert "no file matches" in rows[str(tmp_path / "nothing_*.png")][0]["error"]
    ref = by_file(reference)
    # read through pyarrow's filesystem, named by its URI, same prediction as from its path
    assert_same_rows([{**r, "file": "x"} for r in rows[uri]], [{**r, "file": "x"} for r in ref[str(good[0])]])
    for f in good[:5]:
        assert_same_rows(rows[str(f)], ref[str(f)])


def test_utkface_crops(utkface_dir, tmp_path):
    names = sorted(os.listdir(utkface_dir))[:: max(1, len(os.listdir(utkface_dir)) // 20)][:20]
    lst = tmp_path / "utk.txt"
    lst.write_text("\n".join(str(utkface_dir / n) for n in names) + "\n")
    out = tmp_path / "o"
    assert main(["batch", str(lst), "--out", str(out), "--workers", "2", "--batch-size", "5", "-q"]) == 0
    rows = read_rows(out)
    assert_exactly_once(rows, [utkface_dir / n for n in names])
    ages = np.array([r["age"] for r in rows if r["age"] is not None])
    true = np.array([int(n.split("_")[0]) for n in names for r in by_file(rows)[str(utkface_dir / n)]
                     if r["age"] is not None])
    assert len(ages) >= 18 and np.mean(np.abs(ages - true)) < 15  # crops of real faces get plausible ages


# -- a bare install (no pyarrow), failed starts --------------------------------------------------------------


def make_many_photos(folder: Path, astronaut_path: Path, coffee_path: Path, n: int) -> list[Path]:
    """``n - 1`` small photos (the astronaut, one face each, and the coffee cup, no face: one row each) at
    several sizes, qualities and mirrored, plus one file that is no image."""
    folder.mkdir(parents=True)
    with Image.open(astronaut_path) as a, Image.open(coffee_path) as c:
        sources = (a.convert("RGB"), c.convert("RGB"))
    files = []
    for i in range(n - 1):
        src = sources[i % 2]
        size = 128 + (i % 5) * 8
        img = src.resize((size, size * src.height // src.width))
        if i % 4 == 2:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        files.append(folder / f"photo_{i:03d}.jpg")
        img.save(files[-1], quality=80 + i % 15)
    files.append(folder / "broken.jpg")
    files[-1].write_bytes(b"\xff\xd8\xff\xe0 the start of a JPEG, then nothing")
    return files


def test_bare_install_batch_of_200_photos_with_one_bad_file(tmp_path, astronaut_path, coffee_path):
    """The README's batch command where pyarrow is not installed: CSV parts, 200 rows, one error row, exit 1."""
    files = make_many_photos(tmp_path / "photos", astronaut_path, coffee_path, 200)
    env = env_without(tmp_path / "site", "pyarrow")
    out = tmp_path / "out"
    r = run_cli("batch", str(tmp_path / "photos"), "--out", str(out), env=env)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "rerun" not in r.stderr
    assert "pyarrow is not installed: writing CSV parts" in r.stderr
    assert "200 image(s), 100 face(s), 1 failure(s)" in r.stderr  # the 100 astronauts found, the bad file failed
    assert {p.suffix for p in out.iterdir() if p.is_file() and not p.name.startswith((".", "_"))} == {".csv"}
    rows = read_rows(out)
    assert len(rows) == 200
    assert_exactly_once(rows, files)
    errors = [r for r in rows if r["error"]]
    assert [e["file"] for e in errors] == [str(files[-1])] and "broken.jpg" in errors[0]["error"]
    assert sum(r["face"] == 0 for r in rows) == 100
    again = run_cli("batch", str(tmp_path / "photos"), "--out", str(out), env=env)  # the same command resumes
    assert again.returncode == 1 and "200 input(s) already done, skipped" in again.stderr, again.stderr

    asked = tmp_path / "asked"  # Parquet asked for: one line before anything is written
    r = run_cli("batch", str(tmp_path / "photos"), "--out", str(asked), "--format", "parquet", env=env)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "needs pyarrow" in r.stderr, r.stderr
    assert not asked.exists()


def test_a_failed_start_does_not_lock_the_output_folder(photos, tmp_path, capsys):
    """A run that opened the folder and stopped before its first part binds no format or model to it."""
    folder, _ = photos
    one = str(next(folder.glob("astronaut_1.*")))
    out = tmp_path / "o"
    with PartStore(out, "parquet", ModelId("other", "0", "1" * 64)):
        pass  # what a start that failed after opening the folder leaves: a _job.json and no part
    assert json.loads((out / JOB_FILE).read_text())["format"] == "parquet"
    assert main(["batch", one, "--out", str(out), "--format", "csv", "-q"]) == 0
    assert json.loads((out / JOB_FILE).read_text())["format"] == "csv"
    # now it holds csv parts: the same command without --format resumes in csv, another format is refused
    assert main(["batch", one, "--out", str(out), "-q"]) == 0
    assert "1 input(s) already done" in capsys.readouterr().err
    assert main(["batch", one, "--out", str(out), "--format", "jsonl", "-q"]) == 2
    assert "holds csv parts" in capsys.readouterr().err
    (out / JOB_FILE).write_text("{half a job")  # a folder with parts and an unreadable description: one line
    assert main(["batch", one, "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unreadable" in err[0]


def test_engine_failure_says_rerun_only_where_it_can_work():
    missing = ModuleNotFoundError("No module named 'pyarrow'", name="pyarrow")
    crashed = RuntimeError("A process in the process pool was terminated abruptly")
    assert "rerun the same command to resume" in str(engine_error("local", crashed, 3))
    assert "3 image(s) were committed" in str(engine_error("local", crashed, 3))
    for exc, n in ((crashed, 0), (missing, 0), (missing, 5)):
        message = str(engine_error("local", exc, n))
        assert "rerun" not in message and "\n" not in message
    assert "nothing was committed" in str(engine_error("ray", crashed, 0))
    assert "package is missing" in str(engine_error("local", missing, 0))
