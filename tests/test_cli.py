"""The command line on a folder of good and bad files: exit codes, CSV/JSON output, one-line errors."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agegender.card import ModelCard
from agegender.cli import main
from agegender.runtime import default_model_path
from agegender.types import ADIENCE_LABELS
from conftest import huge_png_bytes, truncated_jpeg_bytes

COLUMNS = ["file", "face", "x1", "y1", "x2", "y2", "det_score", "gender", "p_female", "age", "age_low", "age_high",
           "age_group", "error"]
GOOD = ("a.png", "b.jpg")
BAD = ("c_truncated.jpg", "d_empty.jpg", "e_text.jpg", "f_huge.png")


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory, astronaut_path, coffee_path) -> Path:
    folder = tmp_path_factory.mktemp("mixed")
    shutil.copy(astronaut_path, folder / "a.png")
    with Image.open(coffee_path) as im:
        im.convert("RGB").save(folder / "b.jpg", format="JPEG", quality=90)
    (folder / "c_truncated.jpg").write_bytes(truncated_jpeg_bytes())
    (folder / "d_empty.jpg").write_bytes(b"")
    (folder / "e_text.jpg").write_text("not an image, just text\n")
    (folder / "f_huge.png").write_bytes(huge_png_bytes(100_000, 100_000))
    (folder / "README.txt").write_text("not an image extension: ignored by folder expansion\n")
    return folder


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    assert all(len(r) == len(header) for r in body), body
    return header, [dict(zip(header, r, strict=True)) for r in body]


def _by_name(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        out.setdefault(Path(r["file"]).name, []).append(r)
    return out


def _check_face_row(r: dict[str, str]) -> None:
    assert r["face"].isdigit()
    x1, y1, x2, y2 = (float(r[k]) for k in ("x1", "y1", "x2", "y2"))
    assert x1 < x2 and y1 < y2
    assert 0.0 <= float(r["det_score"]) <= 1.0
    assert r["gender"] in ("male", "female")
    p = float(r["p_female"])
    assert 0.0 <= p <= 1.0
    assert 0.0 <= float(r["age_low"]) <= float(r["age"]) <= float(r["age_high"]) <= 100.0
    assert r["age_group"] in ADIENCE_LABELS
    assert r["error"] == ""


def _assert_no_traceback(text: str) -> None:
    assert "Traceback" not in text
    assert "Error:" not in text.replace("agegender: error:", "")  # no raw Python exception names


# -- predict on the mixed folder ---------------------------------------------------------------------------


def test_predict_csv_on_mixed_folder(mixed_folder, tmp_path, capsys):
    out = tmp_path / "out.csv"
    rc = main(["predict", "--quiet", "--format", "csv", "-o", str(out), str(mixed_folder)])
    captured = capsys.readouterr()
    assert rc == 1
    _assert_no_traceback(captured.err)
    # one line per bad file on stderr, each naming its file
    err_lines = captured.err.splitlines()
    assert len([ln for ln in err_lines if ln.startswith("error:")]) == len(BAD)
    for name in BAD:
        assert len([ln for ln in err_lines if name in ln]) == 1, (name, captured.err)
    for name in GOOD:
        assert name not in captured.err
    assert captured.out == ""  # the results went to the file

    header, rows = _read_csv(out)
    assert header == COLUMNS
    by = _by_name(rows)
    assert set(by) == set(GOOD) | set(BAD)  # README.txt is not an image file
    # astronaut: one face, index 0, every field filled
    assert len(by["a.png"]) == 1
    a = by["a.png"][0]
    assert a["face"] == "0"
    assert all(a[k] != "" for k in COLUMNS if k != "error")
    _check_face_row(a)
    # coffee: one row, everything but the file name empty
    assert len(by["b.jpg"]) == 1
    assert all(v == "" for k, v in by["b.jpg"][0].items() if k != "file")
    # each bad file: one row with the error filled (one line) and nothing else
    for name in BAD:
        assert len(by[name]) == 1
        r = by[name][0]
        assert r["error"] and "\n" not in r["error"] and name in r["error"]
        assert all(v == "" for k, v in r.items() if k not in ("file", "error"))
    assert "exceeds" in by["f_huge.png"][0]["error"]


def test_predict_json(mixed_folder, capsys):
    rc = main(["predict", "--quiet", "--format", "json", str(mixed_folder)])
    captured = capsys.readouterr()
    assert rc == 1
    _assert_no_traceback(captured.err)
    results = json.loads(captured.out)
    assert isinstance(results, list) and len(results) == len(GOOD) + len(BAD)
    by = {Path(r["source"]).name: r for r in results}
    assert len(by["a.png"]["faces"]) == 1 and by["a.png"]["error"] is None
    face = by["a.png"]["faces"][0]
    assert face["gender"] in ("male", "female") and 0 <= face["p_female"] <= 1
    assert face["age_low"] <= face["age"] <= face["age_high"]
    assert len(face["box"]) == 4 and len(face["landmarks"]) == 5
    assert by["b.jpg"]["faces"] == [] and by["b.jpg"]["error"] is None
    for name in BAD:
        assert by[name]["faces"] == [] and by[name]["error"]


def test_predict_json_to_file(astronaut_path, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["predict", "--format", "json", "-o", str(out), str(astronaut_path)]) == 0
    assert capsys.readouterr().out == ""
    results = json.loads(out.read_text())
    assert len(results) == 1 and len(results[0]["faces"]) == 1


def test_predict_table_default(astronaut_path, coffee_path, capsys):
    assert main(["predict", str(astronaut_path), str(coffee_path)]) == 0
    captured = capsys.readouterr()
    _assert_no_traceback(captured.err)
    lines = captured.out.splitlines()
    assert len(lines) == 2
    assert "face 0" in lines[0] and "astronaut" in lines[0]
    assert "no face" in lines[1]


def test_annotate_writes_an_image(mixed_folder, tmp_path, capsys):
    ann = tmp_path / "annotated"
    rc = main(["predict", "--quiet", "--annotate", str(ann), "--format", "csv", str(mixed_folder / "a.png")])
    assert rc == 0
    capsys.readouterr()
    files = list(ann.iterdir())
    assert [f.name for f in files] == ["a.jpg"]
    with Image.open(files[0]) as im:
        assert im.size == (512, 512)
        drawn = np.asarray(im.convert("RGB"), dtype=np.int16)
    with Image.open(mixed_folder / "a.png") as im:
        orig = np.asarray(im.convert("RGB"), dtype=np.int16)
    assert np.abs(drawn - orig).max() > 100  # a box and a label were drawn


def test_aligned_one_row_per_file(mixed_folder, tmp_path, capsys):
    out = tmp_path / "aligned.csv"
    rc = main(["predict", "--quiet", "--aligned", "--format", "csv", "-o", str(out),
               *(str(mixed_folder / n) for n in GOOD)])
    assert rc == 0
    capsys.readouterr()
    header, rows = _read_csv(out)
    assert header == COLUMNS
    assert [Path(r["file"]).name for r in rows] == list(GOOD)
    for r in rows:
        assert r["face"] == "0"
        _check_face_row(r)


def test_max_faces_option(astronaut, tmp_path, capsys):
    two = tmp_path / "two.png"
    Image.fromarray(np.hstack([astronaut, astronaut])).save(two)
    for extra, n in (([], 2), (["--max-faces", "1"], 1)):
        out = tmp_path / "m.csv"
        assert main(["predict", "--quiet", "--format", "csv", "-o", str(out), *extra, str(two)]) == 0
        _, rows = _read_csv(out)
        assert [r["face"] for r in rows] == [str(i) for i in range(n)]
    capsys.readouterr()


def test_nonexistent_path_exit_1(tmp_path, astronaut_path, capsys):
    missing = tmp_path / "nope.jpg"
    assert main(["predict", str(missing)]) == 1
    captured = capsys.readouterr()
    _assert_no_traceback(captured.err)
    assert "nope.jpg" in captured.err

    out = tmp_path / "o.csv"
    assert main(["predict", "--format", "csv", "-o", str(out), str(missing), str(astronaut_path)]) == 1
    captured = capsys.readouterr()
    _, rows = _read_csv(out)
    by = _by_name(rows)
    assert by["nope.jpg"][0]["error"] and by["astronaut.png"][0]["face"] == "0"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--no-such-option"],
        ["predict"],
        ["predict", "--no-such-option", "x.jpg"],
        ["predict", "--format", "xml", "x.jpg"],
        ["predict", "--max-faces", "many", "x.jpg"],
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    _assert_no_traceback(captured.err)
    assert captured.err  # says something


def test_max_faces_zero_exit_2(astronaut_path, capsys):
    assert main(["predict", "--max-faces", "0", str(astronaut_path)]) == 2
    captured = capsys.readouterr()
    assert "max-faces" in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert captured.out == ""


def test_empty_folder_exit_2(tmp_path, capsys):
    assert main(["predict", str(tmp_path)]) == 2
    capsys.readouterr()


def test_info(capsys):
    card = ModelCard.load(default_model_path())
    assert main(["info"]) == 0
    captured = capsys.readouterr()
    assert card.sha256[:16] in captured.out
    assert card.name in captured.out
    assert main(["info", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["sha256"] == card.sha256


def test_version(capsys):
    assert main(["--version"]) == 0
    assert re.search(r"agegender \d+\.\d+", capsys.readouterr().out)


# -- a real process: real exit codes ------------------------------------------------------------------------


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agegender.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_subprocess_exit_codes(mixed_folder, tmp_path):
    out = tmp_path / "out.csv"
    proc = _run("predict", "--format", "csv", "-o", str(out), str(mixed_folder), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    _assert_no_traceback(proc.stderr)
    assert proc.stdout == ""
    for name in BAD:
        assert len([ln for ln in proc.stderr.splitlines() if name in ln]) == 1, proc.stderr
    header, rows = _read_csv(out)
    assert header == COLUMNS
    assert len(rows) == len(GOOD) + len(BAD)

    proc = _run("predict", "--max-faces", "0", str(mixed_folder / "a.png"), cwd=tmp_path)
    assert proc.returncode == 2
    _assert_no_traceback(proc.stderr)


def test_subprocess_error_lines_not_glued_to_progress_bar(mixed_folder, tmp_path):
    proc = _run("predict", "--format", "csv", "-o", str(tmp_path / "o.csv"), str(mixed_folder), cwd=tmp_path)
    segments = re.split(r"[\r\n]", proc.stderr)
    for name in BAD:
        hits = [s for s in segments if name in s]
        assert len(hits) == 1 and hits[0].startswith("error: "), proc.stderr


# -- UTKFace (developers / CI only) -------------------------------------------------------------------------


def test_utkface_crops_have_faces(utkface_dir, tmp_path, capsys):
    files = sorted(p for p in utkface_dir.iterdir() if p.is_file() and p.suffix.lower() == ".jpg")[::500][:40]
    assert len(files) == 40
    out = tmp_path / "utk.csv"
    rc = main(["predict", "--quiet", "--format", "csv", "-o", str(out), *map(str, files)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    header, rows = _read_csv(out)
    assert header == COLUMNS
    with_face = {r["file"] for r in rows if r["face"] == "0"}
    assert len({r["file"] for r in rows}) == 40
    assert len(with_face) >= 39, sorted({r["file"] for r in rows} - with_face)
    for r in rows:
        if r["face"]:
            _check_face_row(r)


# -- the smaller things: help order, info, error lines, progress bars ------------------------------------------


def test_help_lists_the_user_commands_first(capsys):
    from agegender.cli import build_parser

    text = build_parser().format_help()
    at = {c: text.index(f"    {c} ") for c in ("predict", "serve", "batch", "video", "info", "train", "evaluate")}
    user = [at[c] for c in ("predict", "serve", "batch", "video", "info")]
    assert user == sorted(user) and max(user) < min(at["train"], at["evaluate"])


def test_info_is_plain_text_and_list_is_aligned(capsys):
    assert main(["info", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 2
    starts = {len(ln) - len(ln.split()[-1]) for ln in lines}  # where the path column starts
    assert len(starts) == 1, lines
    for model in ("default", "multidomain"):
        assert main(["info", "--model", model]) == 0
        out = capsys.readouterr().out
        assert "{" not in out and "}" not in out, out  # no Python dicts
        indents = {len(ln) - len(ln.lstrip()) for ln in out.splitlines()}
        assert all(i == 0 or (i >= 14 and i % 2 == 0) for i in indents), sorted(indents)  # nested blocks


def test_error_line_names_the_file_once(mixed_folder, capsys):
    assert main(["predict", str(mixed_folder / "e_text.jpg"), str(mixed_folder / "d_empty.jpg")]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines() + captured.err.splitlines()
    for name in ("e_text.jpg", "d_empty.jpg"):
        hits = [ln for ln in lines if name in ln]
        assert len(hits) == 2 and all(ln.count(name) == 1 for ln in hits), hits  # the table line, the error line


def test_no_progress_bar_when_stderr_is_not_a_terminal(mixed_folder, tmp_path):
    proc = _run("predict", "--format", "csv", "-o", str(tmp_path / "o.csv"), str(mixed_folder), cwd=tmp_path)
    assert proc.returncode == 1
    batch = _run("batch", str(mixed_folder), "--out", str(tmp_path / "b"), "--format", "csv", "--workers", "1",
                 cwd=tmp_path)
    assert batch.returncode == 1, batch.stderr
    for err in (proc.stderr, batch.stderr):
        assert "\r" not in err and "img/s" not in err and "%|" not in err, err


def test_sample_photo_is_shipped_and_predicted(astronaut_path, capsys):
    """`predict --sample` runs on the package's copy of the public-domain sample (byte-identical to
    scikit-image's), so the README's first command needs nothing but the package."""
    from agegender.runtime import sample_photo

    assert sample_photo().read_bytes() == astronaut_path.read_bytes()
    assert main(["predict", "--sample", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 1 and rows[0]["file"].endswith("astronaut.png") and rows[0]["gender"] in ("male", "female")


def test_predict_without_inputs_is_a_usage_error(capsys):
    assert main(["predict"]) == 2
    assert "--sample" in capsys.readouterr().err
