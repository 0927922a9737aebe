"""The face-embedding gender teacher (training only): dlib embeddings, their cache, cross-fitting."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytest.importorskip("torch", reason="training tests need the train extra (torch)")
if importlib.util.find_spec("dlib") is None or importlib.util.find_spec("face_recognition_models") is None:
    pytest.skip("needs the facefeat extra (dlib-bin, face-recognition-models)", allow_module_level=True)

from _synth import make_csv_dataset, write_config  # noqa: E402
from agegender.errors import DatasetError  # noqa: E402
from agegender.train.facefeat import cached_embeddings, crossfit_gender, embed_images  # noqa: E402


@pytest.fixture(scope="module")
def astronaut_files(tmp_path_factory):
    from PIL import Image
    from skimage import data

    tmp = tmp_path_factory.mktemp("faces")
    img = Image.fromarray(data.astronaut())
    paths = []
    for name, im in (("a.png", img), ("a_mirror.png", img.transpose(Image.FLIP_LEFT_RIGHT)),
                     ("coffee.png", Image.fromarray(data.coffee()))):
        im.save(tmp / name)
        paths.append(str(tmp / name))
    return paths


def test_same_face_embeds_close_and_a_faceless_image_falls_back(astronaut_files):
    emb, found = embed_images(astronaut_files, progress=False)
    assert emb.shape == (3, 128) and np.isfinite(emb).all()
    assert found.tolist() == [True, True, False]
    # dlib's own same-person threshold is 0.6; a face and its mirror image are the same person
    assert np.linalg.norm(emb[0] - emb[1]) < 0.6 < np.linalg.norm(emb[0] - emb[2])


def test_embeddings_are_cached_and_reused(astronaut_files, tmp_path):
    cache = tmp_path / "emb.npz"
    first = cached_embeddings(astronaut_files[:2], cache)
    stamp = cache.stat().st_mtime_ns
    again = cached_embeddings(astronaut_files[1::-1], cache)  # reversed order, nothing new to compute
    assert cache.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again, first[::-1])


def test_crossfit_gender_scores_every_row_and_unknowns():
    rng = np.random.default_rng(0)
    gender = np.repeat([0, 1], 100)
    emb = rng.normal(0, 1, (200, 128)) + gender[:, None] * 0.8
    gender_with_unknown = gender.copy()
    gender_with_unknown[:10] = -1
    p = crossfit_gender(emb, gender_with_unknown, folds=5)
    assert p.shape == (200,) and ((p >= 0) & (p <= 1)).all()
    assert ((p >= 0.5) == (gender == 1)).mean() > 0.9
    with pytest.raises(DatasetError):
        crossfit_gender(emb, np.zeros(200, int))


def test_training_with_the_face_teacher_records_it_in_the_card(tmp_path):
    from agegender.train.config import load_config
    from agegender.train.export import export_run
    from agegender.train.trainer import fit

    csv_path = make_csv_dataset(tmp_path / "data", n=32)
    teacher_run = fit(load_config(write_config(tmp_path, csv_path)))
    export_run([teacher_run], tmp_path / "teacher.onnx", flip=False)
    cfg = load_config(write_config(tmp_path, csv_path, out_dir=str(tmp_path / "student")),
                      [f"teacher={tmp_path / 'teacher.json'}", "distill=0.5", "face_teacher=0.3"])
    student = fit(cfg)
    assert (tmp_path / "labels-faceemb.npz").exists()  # beside the crop cache
    card, _ = export_run([student], tmp_path / "student.onnx", flip=False)
    entries = card.training["distilled_from"]
    assert entries[-1]["weight_in_gender_targets"] == [0.3]
    with pytest.raises(DatasetError):
        fit(load_config(write_config(tmp_path, csv_path, out_dir=str(tmp_path / "bad")), ["face_teacher=0.3"]))
