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


def test_maps_handed_in_are_drawn_beside_the_attention(tmp_path, astronaut_path):
    """Further maps (Grad-CAM from a training run, in ``agegender explain --run``) come from the caller."""
    import numpy as np

    from agegender.explain import SCALE, explain_image

    given = []

    def brightness(crops: np.ndarray) -> dict[str, np.ndarray]:
        given.append(crops)
        return {"brightness": crops.mean(-1) / 255.0}

    written = explain_image(astronaut_path, tmp_path / "maps", maps=brightness)
    assert [p.name for p in written] == ["astronaut_faces.png", "astronaut_face0_explain.png"]
    (crops,) = given
    assert crops.dtype == np.uint8 and crops.shape[0] == 1 and crops.shape[3] == 3  # the first view only
    s = crops.shape[1] * SCALE
    sheet = np.asarray(Image.open(written[1]).convert("RGB"), np.int16)
    assert sheet.shape == (s + 22, 3 * s, 3)  # crop, attention, the map handed in
    attention, extra = sheet[22:, s : 2 * s], sheet[22:, 2 * s :]
    assert np.abs(attention - extra).mean() > 5  # a panel of its own, not the attention again
    plain = explain_image(astronaut_path, tmp_path / "plain")
    assert Image.open(plain[1]).size == (2 * s, s + 22)
