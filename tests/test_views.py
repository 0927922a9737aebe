"""Models with two views of each face (a tight crop and a wide one): export, card, runtime, predictor."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="exporting needs the train extra (torch)")

from _synth import make_csv_dataset, write_config  # noqa: E402
from agegender.train.config import load_config  # noqa: E402
from agegender.train.trainer import fit  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tight run (margin 0) and a wide one (margin 0.25, grey past the photo) on the same faces."""
    tmp = tmp_path_factory.mktemp("views")
    csv_path = make_csv_dataset(tmp / "data", n=48)
    tight = fit(load_config(write_config(tmp, csv_path)))
    (tmp / "w").mkdir()
    wide_cfg = write_config(tmp / "w", csv_path, out_dir=str(tmp / "wide"), margin=0.25, border="grey", seed=1,
                            data={"dataset": "csv", "root": str(csv_path), "split": str(tmp / "split.csv"),
                                  "cache": str(tmp / "cache-wide"), "landmarks": str(tmp / "cache")})
    wide = fit(load_config(wide_cfg))
    return tmp, csv_path, tight, wide


def _member_probs(run, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from agegender.train.engine import predict_logits
    from agegender.train.export import load_run_model

    g, a = predict_logits(load_run_model(run)[0], torch.from_numpy(crop[None].copy()))
    return torch.softmax(torch.from_numpy(g), 1).numpy()[0], torch.softmax(torch.from_numpy(a), 1).numpy()[0]


def test_two_view_model_averages_each_network_on_its_own_framing(runs, tmp_path):
    from agegender import Predictor
    from agegender.align import center_crop
    from agegender.card import ModelCard, ViewSpec
    from agegender.train.export import export_run

    tmp, csv_path, tight, wide = runs
    out = tmp_path / "two.onnx"
    card, diff = export_run([wide, tight], out, flip=False)  # the tight view comes first whatever the order
    assert diff < 1e-4
    assert card.alignment.views == (ViewSpec(0.25, "grey"),)
    assert ModelCard.load(tmp_path / "two.json").alignment.framings == ((0.0, "edge"), (0.25, "grey"))

    photo = next(p for p in sorted((tmp / "data").rglob("*.jpg")))
    pred = Predictor(model=out).predict(str(photo), aligned=True)
    assert len(pred.faces) == 1
    from agegender.io import load_image

    img = load_image(str(photo))
    g0, a0 = _member_probs(tight, center_crop(img, 112, 0.0, border="edge"))
    g1, a1 = _member_probs(wide, center_crop(img, 112, 0.25, border="grey"))
    face = pred.faces[0]
    assert face.p_female == pytest.approx((g0[1] + g1[1]) / 2, abs=1e-4)
    assert face.age == pytest.approx(float(((a0 + a1) / 2) @ np.arange(len(a0))), abs=1e-2)
    # the tight network alone says something else: the wide view is really used
    assert abs(g0[1] - (g0[1] + g1[1]) / 2) > 1e-6 or abs(a0 @ np.arange(len(a0)) - face.age) > 1e-3


def test_runtime_refuses_a_card_without_the_graphs_views(runs, tmp_path):
    from agegender.errors import ModelCardError
    from agegender.runtime import ModelRuntime
    from agegender.train.export import export_run

    _, _, tight, wide = runs
    export_run([tight, wide], tmp_path / "two.onnx", flip=False)
    d = json.loads((tmp_path / "two.json").read_text())
    d["alignment"]["views"] = []
    (tmp_path / "two.json").write_text(json.dumps(d))
    with pytest.raises(ModelCardError, match="6 input channels") as exc:
        ModelRuntime(tmp_path / "two.onnx")
    assert "\n" not in str(exc.value)


def test_calibrated_export_and_explain_with_two_views(runs, tmp_path, astronaut_path):
    from agegender.explain import explain_image
    from agegender.train.export import export_calibrated

    _, _, tight, wide = runs
    out = tmp_path / "cal.onnx"
    card, report = export_calibrated([tight, wide], out, flip=True)
    assert report["parity_max_abs_diff"] < 1e-4 and report["test"]["n"] > 0
    assert len(card.alignment.views) == 1
    written = explain_image(astronaut_path, tmp_path / "x", model=out)
    assert len(written) == 2  # the faces drawn, and one sheet: crop, wide view, attention
    from PIL import Image

    sheet = Image.open(written[1])
    assert sheet.width == 3 * 112 * 3


def test_stacked_views_must_be_the_same_faces(runs, tmp_path):
    from agegender.train.dataset import DatasetError
    from agegender.train.views import member_views, stacked_arrays

    tmp, csv_path, tight, wide = runs
    cfgs = [torch.load(r / "best.pt", weights_only=False)["config"] for r in (tight, wide)]
    assert member_views(cfgs) == ([(0.0, "edge"), (0.25, "grey")], [0, 1])
    base = load_config(write_config(tmp_path, csv_path, data={
        "dataset": "csv", "root": str(csv_path), "split": str(tmp / "split.csv"), "cache": str(tmp / "cache")}))
    arrays = stacked_arrays(base, cfgs, ("val",))
    assert arrays["val"].crops.shape[1:] == (112, 112, 6)
    # a member on the wide framing trained on another dataset has no crops of these faces
    other = dict(cfgs[1], sources=[], data={"dataset": "utkface", "cache": "x"})
    with pytest.raises(DatasetError, match="no 0.25/grey crop cache of csv"):
        stacked_arrays(base, [cfgs[0], other], ("val",))
