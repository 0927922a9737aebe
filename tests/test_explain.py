"""`agegender explain`: attention overlays from the ONNX model (no torch needed)."""

from __future__ import annotations

from PIL import Image

from agegender.cli import main


def test_explain_writes_attention_sheet(tmp_path, astronaut_path):
    out = tmp_path / "x"
    assert main(["explain", str(astronaut_path), "--out", str(out)]) == 0
    sheet = Image.open(out / "astronaut_face0_explain.png")
    faces = Image.open(out / "astronaut_faces.png")
    assert faces.size == (512, 512)
    assert sheet.size[0] >= 2 * sheet.size[1] - 60  # crop + attention panels side by side


def test_explain_no_face_exits_1(tmp_path, coffee_path):
    assert main(["explain", str(coffee_path), "--out", str(tmp_path / "x")]) == 1


def test_explain_bad_input_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    assert main(["explain", str(bad), "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.jpg" in err[0]
