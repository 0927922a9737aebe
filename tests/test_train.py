"""Training side on a tiny generated dataset: one epoch, resume, DDP start, export parity."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need the train extra (torch)")

from _synth import make_csv_dataset, write_config  # noqa: E402
from agegender.train.config import load_config  # noqa: E402
from agegender.train.trainer import fit  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    csv_path = make_csv_dataset(tmp / "data", n=48)
    return tmp, csv_path


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_one_epoch_then_resume(tiny):
    tmp, csv_path = tiny
    cfg_path = write_config(tmp, csv_path)
    run = fit(load_config(cfg_path))
    assert (run / "best.pt").exists() and (run / "last.pt").exists()
    assert (run / "curves.png").stat().st_size > 0
    rows = _rows(run / "metrics.csv")
    assert len(rows) == 1 and float(rows[0]["train_loss"]) > 0
    assert 0.0 <= float(rows[0]["val_gender_acc"]) <= 1.0
    # the split was written once and covers train/val/test
    parts = {r["part"] for r in _rows(tmp / "split.csv")}
    assert parts == {"train", "val", "test"}
    # resuming with more epochs continues at epoch 1 instead of starting over
    fit(load_config(cfg_path, ["epochs=2"]))
    rows = _rows(run / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["0", "1"]


def test_export_parity_and_inference(tiny, tmp_path):
    from agegender.runtime import ModelRuntime
    from agegender.train.export import export_calibrated

    tmp, csv_path = tiny
    run = tmp / "run"
    if not (run / "best.pt").exists():
        fit(load_config(write_config(tmp, csv_path)))
    out = tmp_path / "model.onnx"
    card, report = export_calibrated([run], out, flip=True)
    assert report["parity_max_abs_diff"] < 1e-4
    assert card.gender_temperature > 0 and card.age_temperature > 0
    rt = ModelRuntime(out)
    from agegender.predictor import Predictor

    crops = np.random.default_rng(0).integers(0, 255, (3, 112, 112, 3), dtype=np.uint8)
    results, att = Predictor(model=out).predict_crops(crops)
    assert len(results) == 3 and att is not None and att.shape[0] == 3
    assert all(0 <= r.age <= 100 and r.age_low <= r.age <= r.age_high for r in results)
    assert rt.card.metrics["n"] > 0


def test_ensemble_export(tiny, tmp_path):
    from agegender.train.export import export_run

    tmp, csv_path = tiny
    run = tmp / "run"
    if not (run / "best.pt").exists():
        fit(load_config(write_config(tmp, csv_path)))
    card, diff = export_run([run, run], tmp_path / "ens.onnx", flip=False)
    assert diff < 1e-4 and "+" in card.architecture
    assert card.name == "ensemble" and card.weights_file == "ens.onnx"
    # a name and version given at export land in the card written beside the ONNX file
    card, _ = export_run([run], tmp_path / "named.onnx", flip=False, name="my-model", version="2.1.0")
    from agegender.card import ModelCard

    loaded = ModelCard.load(tmp_path / "named.json")
    assert (loaded.name, loaded.version) == ("my-model", "2.1.0") == (card.name, card.version)


def test_ddp_two_processes(tiny, tmp_path):
    tmp, csv_path = tiny
    # reuse the cache and split of the module fixture; a fresh run directory
    cfg_path = write_config(tmp_path, csv_path, out_dir=str(tmp_path / "ddp_run"))
    import yaml

    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["data"]["split"] = str(tmp / "split.csv")
    cfg["data"]["cache"] = str(tmp / "cache")
    cfg["threads"] = 2
    cfg_path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
         "-m", "agegender.cli", "train", str(cfg_path)],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = _rows(tmp_path / "ddp_run" / "metrics.csv")
    assert len(rows) == 1


def test_config_rejects_unknown_keys(tmp_path):
    from agegender.errors import DatasetError

    p = tmp_path / "bad.yaml"
    p.write_text("epochs: 2\nno_such_key: 1\n")
    with pytest.raises(DatasetError, match="no_such_key"):
        load_config(p)
    with pytest.raises(DatasetError, match="unknown config key"):
        load_config(None, ["data.nope=1"])
    assert load_config(None, ["epochs=3", "data.limit=5"]).data.limit == 5


def test_explain_with_gradcam(tiny, tmp_path, astronaut_path):
    from agegender.explain import explain_image

    tmp, csv_path = tiny
    run = tmp / "run"
    if not (run / "best.pt").exists():
        fit(load_config(write_config(tmp, csv_path)))
    model = tmp_path / "m.onnx"
    from agegender.train.export import export_run

    export_run([run], model, flip=False)
    from agegender.train.gradcam import gradcam_maps

    written = explain_image(astronaut_path, tmp_path / "x", model=model,
                            maps=lambda crops: {f"Grad-CAM {k}": v for k, v in gradcam_maps(run, crops).items()})
    from PIL import Image

    sheet = Image.open(written[-1])
    assert sheet.size[0] >= 4 * (sheet.size[1] - 22) - 4  # crop, attention, Grad-CAM gender, Grad-CAM age


def test_cross_validation_two_folds(tiny, tmp_path):
    from agegender.train.crossval import cross_validate

    tmp, csv_path = tiny
    cfg = load_config(write_config(tmp, csv_path), [f"out_dir={tmp_path / 'cv'}"])
    result = cross_validate(cfg, folds=2)
    assert len(result.folds) == 2 and "±" in result.markdown()
    for k in range(2):
        assert (tmp_path / "cv" / f"fold_{k}" / "report" / "metrics.json").exists()
    assert (tmp_path / "cv" / "cv_report.md").exists()


def test_distillation_from_an_onnx_teacher(tiny, tmp_path):
    from agegender.train.export import export_run
    from agegender.train.trainer import teacher_probabilities

    tmp, csv_path = tiny
    run = tmp / "run"
    if not (run / "best.pt").exists():
        fit(load_config(write_config(tmp, csv_path)))
    teacher, _ = export_run([run], tmp_path / "teacher.onnx", flip=True)
    crops = np.random.default_rng(1).integers(0, 255, (5, 112, 112, 3), dtype=np.uint8)
    pg, pa = teacher_probabilities(str(tmp_path / "teacher.json"), crops)
    assert pg.shape == (5, 2) and pa.shape == (5, 101)
    assert torch.allclose(pg.sum(1), torch.ones(5), atol=1e-5) and torch.allclose(pa.sum(1), torch.ones(5), atol=1e-5)
    cfg = load_config(write_config(tmp_path, csv_path, out_dir=str(tmp_path / "student")),
                      [f"teacher={tmp_path / 'teacher.json'}", "distill=0.5", f"data.split={tmp / 'split.csv'}",
                       f"data.cache={tmp / 'cache'}"])
    student = fit(cfg)
    rows = _rows(student / "metrics.csv")
    assert float(rows[0]["train_kd_age"]) > 0 and float(rows[0]["train_kd_gender"]) >= 0
    assert (student / "teacher.pt").exists()  # kept for a resumed run
    card, _ = export_run([student], tmp_path / "student.onnx", flip=False)
    assert card.training["distilled_from"][0]["sha256"] == teacher.sha256


def test_tta_adds_nothing_when_the_graph_has_the_mirror_pass(tiny, tmp_path, astronaut):
    """A model exported with the mirror pass averages each face with its mirror inside the graph."""
    from agegender import Predictor
    from agegender.train.export import export_run

    tmp, csv_path = tiny
    run = tmp / "run"
    if not (run / "best.pt").exists():
        fit(load_config(write_config(tmp, csv_path)))
    export_run([run], tmp_path / "m.onnx", flip=True)
    p = Predictor(model=str(tmp_path / "m.json"))
    assert p.card.mirror_in_graph
    crop = p.align(astronaut, p.detect(astronaut)[0])
    plain, _ = p.predict_crops(crop[None])
    mirrored, _ = p.predict_crops(np.ascontiguousarray(crop[None, :, ::-1]))
    assert abs(plain[0].p_female - mirrored[0].p_female) < 1e-4  # mirror-invariant by construction
    p.tta = True
    both, _ = p.predict_crops(crop[None])
    assert both[0].p_female == plain[0].p_female and both[0].age == plain[0].age


def test_interpolated_run_lies_between_its_ends_and_exports(tiny, tmp_path):
    """WiSE-FT: alpha 0 gives the start network back, 1 the fine-tuned one; the export's card records both."""
    from agegender.errors import DatasetError
    from agegender.train.export import export_calibrated, export_run, load_run_model
    from agegender.train.interpolate import interpolate_run

    tmp, csv_path = tiny
    run = tmp / "run"
    if not (run / "best.pt").exists():
        fit(load_config(write_config(tmp, csv_path)))
    tuned = fit(load_config(write_config(tmp_path, csv_path, out_dir=str(tmp_path / "tuned")),
                            [f"init={run}", "freeze_bn=true", "seed=3", "lr=0.01", f"data.split={tmp / 'split.csv'}",
                             f"data.cache={tmp / 'cache'}"]))
    x = torch.randn(2, 3, 112, 112)
    outs = {}
    for alpha in (0.0, 0.5, 1.0):
        model, ck = load_run_model(interpolate_run(tuned, alpha, tmp_path / f"wise-{alpha}"))
        with torch.no_grad():
            outs[alpha] = model(x)[1]
        assert ck["config"]["interpolated"] == {"start": str(run), "tuned": str(tuned), "alpha": alpha}
    start, tuned_model = load_run_model(run)[0], load_run_model(tuned)[0]
    with torch.no_grad():
        assert torch.allclose(outs[0.0], start(x)[1], atol=1e-5)
        assert torch.allclose(outs[1.0], tuned_model(x)[1], atol=1e-5)
    assert not torch.allclose(outs[0.5], outs[0.0]) and not torch.allclose(outs[0.5], outs[1.0])
    mid = load_run_model(tmp_path / "wise-0.5")[0].state_dict()
    for name, w in tuned_model.state_dict().items():
        if w.is_floating_point():
            assert torch.allclose(mid[name], (w + start.state_dict()[name]) / 2, atol=1e-6), name
    card, diff = export_run([tmp_path / "wise-0.5"], tmp_path / "wise.onnx", flip=False)
    assert diff < 1e-4 and card.training["configs"][0]["interpolated"]["alpha"] == 0.5
    card, _ = export_calibrated([tmp_path / "wise-0.5"], tmp_path / "wise-cal.onnx", flip=False, with_test=False)
    assert card.training["configs"][0]["interpolated"]["alpha"] == 0.5
    with pytest.raises(ValueError, match="alpha"):
        interpolate_run(tuned, 1.5, tmp_path / "bad")
    with pytest.raises(DatasetError, match="no init"):
        interpolate_run(run, 0.5, tmp_path / "bad")


def test_interpolate_command_reports_bad_input(tmp_path, capsys):
    from agegender.cli import main

    missing = tmp_path / "nope"
    assert main(["interpolate", str(missing), "--alpha", "0.5", "--out", str(tmp_path / "o")]) == 2
    assert f"argument RUN_DIR: {missing}: no such folder" in capsys.readouterr().err
    assert main(["interpolate", str(tmp_path), "--alpha", "0.5", "--out", str(tmp_path / "o")]) == 2
    assert f"{tmp_path}: best.pt not found" in capsys.readouterr().err
    assert main(["interpolate", str(tmp_path), "--alpha", "1.5", "--out", str(tmp_path / "o")]) == 2
    assert "argument --alpha: must be from 0 to 1, got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_noise_ceiling_command_writes_the_training_crops_level(tiny, tmp_path, capsys):
    """`agegender noise-ceiling` measures the config's training crops and writes the level into the card."""
    import json
    import shutil

    from agegender.card import ModelCard
    from agegender.cli import main
    from agegender.denoise import noise_level
    from agegender.runtime import default_model_path
    from agegender.train.noise_ceiling import training_crops

    tmp, csv_path = tiny
    cfg = write_config(tmp, csv_path)
    src = default_model_path()
    card = tmp_path / "model.json"
    shutil.copy(src, card)
    shutil.copy(src.parent / ModelCard.load(src).weights_file, tmp_path)

    assert main(["noise-ceiling", str(card), "--config", str(cfg), "--percentile", "90"]) == 0
    expected = round(float(np.percentile(noise_level(training_crops(cfg)), 90)), 3)
    written = json.loads(card.read_text())
    assert written["input"]["noise_ceiling"] == expected > 0
    assert written["training"]["noise_ceiling"]["percentile"] == 90
    assert ModelCard.load(card).input.noise_ceiling == expected

    assert main(["noise-ceiling", str(card), "--remove"]) == 0
    assert ModelCard.load(card).input.noise_ceiling is None
    capsys.readouterr()
    assert main(["noise-ceiling", str(card)]) == 2
    assert "--percentile P or --remove" in capsys.readouterr().err
    assert main(["noise-ceiling", str(card), "--percentile", "95"]) != 0
    assert "needs the training config" in capsys.readouterr().err


def test_weight_average_is_kept_validated_and_resumed(tiny, tmp_path):
    """optim.ema: best.pt holds the moving average of the weights, not the last step's; last.pt carries the
    average, and a resumed run goes on averaging instead of starting again."""
    from agegender.errors import DatasetError

    tmp, csv_path = tiny
    run = tmp / "run"
    if not (run / "best.pt").exists():
        fit(load_config(write_config(tmp, csv_path)))
    cfg_path = write_config(tmp_path, csv_path, out_dir=str(tmp_path / "avg"))
    sets = [f"init={run}", "freeze_bn=true", "lr=0.01", "optim.ema=0.9", "optim.patience=5",
            f"data.split={tmp / 'split.csv'}", f"data.cache={tmp / 'cache'}"]
    out = fit(load_config(cfg_path, sets))
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=False)["model"]
    last = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    steps = int(last["ema"]["n_averaged"])
    assert steps > 1
    moved = [k for k, w in last["model"].items() if w.is_floating_point() and not torch.allclose(w, best[k])]
    assert moved, "the kept weights are the last step's, not their average"
    fit(load_config(cfg_path, [*sets, "epochs=2"]))
    again = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert again["epoch"] == 1 and int(again["ema"]["n_averaged"]) == 2 * steps
    with pytest.raises(DatasetError, match="optim.ema"):
        fit(load_config(write_config(tmp_path, csv_path, out_dir=str(tmp_path / "bad")), [*sets, "optim.ema=1.5"]))


def test_a_trained_network_widened_trains_on(tiny, tmp_path):
    """model.init_arch: a run's network is widened into attn_mbv2_x2, trains, and its best.pt holds the wide
    network; interpolating back to alpha 0 gives the widened start. Bad settings fail before data loads."""
    from agegender.errors import DatasetError
    from agegender.train.interpolate import interpolate_run

    tmp, csv_path = tiny
    run = tmp / "run"
    if not (run / "best.pt").exists():
        fit(load_config(write_config(tmp, csv_path)))
    cfg_path = write_config(tmp_path, csv_path, out_dir=str(tmp_path / "wide"))
    sets = [f"init={run}", "model.init_arch=attn_mbv2", "model.arch=attn_mbv2_x2", "freeze_bn=true",
            f"data.split={tmp / 'split.csv'}", f"data.cache={tmp / 'cache'}"]
    out = fit(load_config(cfg_path, sets))
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=False)["model"]
    narrow = torch.load(run / "best.pt", map_location="cpu", weights_only=False)["model"]
    key = "backbone.features.2.conv.0.0.weight"
    assert best[key].shape[0] == 2 * narrow[key].shape[0]
    start = torch.load(interpolate_run(out, 0.0, tmp_path / "back") / "best.pt", weights_only=False)["model"]
    assert torch.equal(start[key][: narrow[key].shape[0]], narrow[key])
    for bad, message in (("model.arch=nope", "unknown network"), ("init=", "model.init is empty")):
        with pytest.raises(DatasetError, match=message):
            fit(load_config(write_config(tmp_path, csv_path, out_dir=str(tmp_path / "bad")), [*sets, bad]))
