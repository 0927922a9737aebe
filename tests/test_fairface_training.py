"""FairFace as a training source: the stratified split, age bins in the metrics, the re-encoding and
"cannot judge" augmentations, and evaluation figures written into a model card."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agegender.data.fairface import load_fairface_csv
from agegender.data.splits import make_split
from agegender.eval.predictions import PredRow
from agegender.eval.report import evaluate_records, record_in_card

REPO = Path(__file__).resolve().parents[1]
RACES = ("White", "Black", "East Asian", "Indian", "Latino_Hispanic", "Middle Eastern", "Southeast Asian")


def _fairface_layout(root: Path, per_cell: int = 10) -> Path:
    """A FairFace-style folder: ``train/N.jpg`` and ``labels.csv`` (file,age,gender,race,service_test)."""
    (root / "train").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows, n = [], 0
    for race in RACES:
        for gender in ("Male", "Female"):
            for age in ("20-29", "more than 70"):
                for _ in range(per_cell):
                    n += 1
                    img = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
                    Image.fromarray(img).save(root / "train" / f"{n}.jpg")
                    rows.append((f"train/{n}.jpg", age, gender, race, "False"))
    path = root / "labels.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "age", "gender", "race", "service_test"])
        w.writerows(rows)
    return path


def test_split_is_stratified_by_group_gender_and_age_bin(tmp_path):
    records, _ = load_fairface_csv(_fairface_layout(tmp_path, per_cell=20))
    hashes = [f"h{i}" for i in range(len(records))]
    rows, rep = make_split(records, hashes, test_fraction=0.05, val_fraction=0.10, seed=0, strata_by="race")
    part = {r.path: r.part for r in rows}
    assert rep.parts == {"train": 476, "val": 56, "test": 28}
    cells: dict[tuple, list[str]] = {}
    for r in records:
        cells.setdefault((r.extra["race"], r.gender, r.age_low), []).append(part[r.path])
    assert len(cells) == 28
    for parts in cells.values():  # every race x gender x age bin: 2 of 20 in val, 1 in test
        assert parts.count("val") == 2 and parts.count("test") == 1


def test_age_bins_scored_as_bins(tmp_path):
    records, _ = load_fairface_csv(_fairface_layout(tmp_path))
    preds = []
    for r in records:  # ages inside the bin for all but the Black faces; gender wrong for them
        black = r.extra["race"] == "Black"
        age = 50.0 if black else (r.age_low + min(r.age_high, 90)) / 2
        gender = ("female" if r.gender == "male" else "male") if black else r.gender
        preds.append(PredRow(file=r.path, age=age, p_female=float(gender == "female"), gender=gender, n_faces=1))
    res = evaluate_records(records, preds, tmp_path / "out", "t", "cmd")
    assert res.age is None  # no exact ages: no MAE
    assert res.fairface9.exact == pytest.approx(1 - 1 / 7)
    assert res.gender.accuracy == pytest.approx(1 - 1 / 7)
    assert res.worst_group["race"] == "Black" and res.worst_group["gender_accuracy"] == 0.0
    rows = [b for b in res.breakdown if b["by"] == "race x gender"]
    assert len(rows) == 14
    assert "worst group (race x gender) | Black" in (tmp_path / "out" / "report.md").read_text()


def test_evaluation_figures_go_into_the_card(tmp_path):
    records, _ = load_fairface_csv(_fairface_layout(tmp_path / "ff"))
    preds = [PredRow(r.path, 25.0, 0.9 if r.gender == "female" else 0.1, r.gender, 1) for r in records]
    res = evaluate_records(records, preds, tmp_path / "out", "t", "cmd")
    card = tmp_path / "fast.json"
    shutil.copy(REPO / "src/agegender/assets/fast.json", card)
    record_in_card(card, "fairface_val", res, "agegender evaluate ...")
    record_in_card(card, "fairface_val", res, "agegender evaluate ...")  # again: replaced, not added
    from agegender.card import ModelCard

    c = ModelCard.load(card)
    entry = c.metrics["full_pipeline"]["fairface_val"]
    assert entry["gender_accuracy"] == 1.0 and entry["age_bin9_accuracy"] == pytest.approx(0.5)
    assert sum(x.startswith("Measured on fairface_val") for x in c.limitations) == 1


def test_summary_scores_bins_and_groups():
    from agegender.train.export import summarize

    n = 40
    age = np.where(np.arange(n) < 20, 30.0, -1.0)
    low, high = np.where(age < 0, 20.0, -1.0), np.where(age < 0, 29.0, -1.0)
    age_logits = np.full((n, 101), -20.0)
    age_logits[:, 25] = 10.0  # every face: certainly 25
    gender = np.arange(n) % 2
    gender_logits = np.stack([1 - gender, gender], 1) * 5.0
    extra = [{"race": "A" if i % 4 < 2 else "B"} for i in range(n)]
    out = summarize(gender_logits, age_logits, gender, age, extra, low=low, high=high)
    assert out["age_mae"] == pytest.approx(5.0, abs=0.01)  # exact ages only
    assert out["age_bin_accuracy"] == 1.0 and out["gender_accuracy"] == 1.0
    assert {"race A x male", "race B x female"} <= set(out["by_group"])


torch = pytest.importorskip("torch", reason="the train extra (PyTorch) runs the augmentations")


def _crops(astronaut: np.ndarray, n: int = 8) -> torch.Tensor:
    face = np.asarray(Image.fromarray(astronaut[56:177, 178:273]).resize((112, 112)))
    return torch.from_numpy(np.stack([face] * n))


def test_reencode_changes_every_picked_crop(astronaut):
    from agegender.train.levers.reencode import reencode

    x = _crops(astronaut, 32)
    assert reencode(x, 0.0, torch.Generator().manual_seed(0)) is x
    y = reencode(x, 1.0, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == torch.uint8
    diff = (y.float() - x.float()).abs().mean(dim=(1, 2, 3))
    assert (diff > 0).all() and (diff < 40).all()  # changed, but still the same face
    grey = [(c[..., 0] == c[..., 1]).all() and (c[..., 1] == c[..., 2]).all() for c in y]
    assert any(grey) and not all(grey)


def test_greyscale_share_turns_picked_crops_grey_and_draws_nothing_at_zero(astronaut):
    from agegender.train.levers.reencode import greyscale

    x = _crops(astronaut, 64)
    g = torch.Generator().manual_seed(0)
    assert greyscale(x, 0.0, g) is x
    assert torch.equal(torch.rand(1, generator=g), torch.rand(1, generator=torch.Generator().manual_seed(0)))
    y = greyscale(x, 0.5, torch.Generator().manual_seed(0))
    grey = torch.tensor([bool((c[..., 0] == c[..., 1]).all() and (c[..., 1] == c[..., 2]).all()) for c in y])
    assert 10 < int(grey.sum()) < 54  # about half of 64
    assert torch.equal(y[~grey], x[~grey])  # the others untouched


def test_unjudgeable_crops_are_unreadable_and_taught_fifty_fifty(astronaut):
    from agegender.train.levers.unjudgeable import make_unjudgeable, uniform_gender_loss

    x = _crops(astronaut, 16)
    y, mask = make_unjudgeable(x, 1.0, torch.Generator().manual_seed(1))
    assert mask.all()
    flipped = x.flip(1)
    for i in range(len(x)):
        upside_down = torch.equal(y[i], flipped[i])
        sideways = any(torch.equal(y[i], x[i].transpose(0, 1).flip(d)) for d in (0, 1))
        blurred = float(y[i].float().std(dim=(0, 1)).mean()) < float(x[i].float().std(dim=(0, 1)).mean()) * 0.8
        assert upside_down or sideways or blurred
    y0, m0 = make_unjudgeable(x, 0.0, torch.Generator().manual_seed(1))
    assert not m0.any() and y0 is x
    even, sure = torch.zeros(1, 2), torch.tensor([[4.0, -4.0]])
    assert float(uniform_gender_loss(even)) < float(uniform_gender_loss(sure))


def test_training_with_both_augmentations(tmp_path):
    from _synth import make_csv_dataset, write_config
    from agegender.train.config import load_config
    from agegender.train.trainer import fit

    cfg = load_config(write_config(tmp_path, make_csv_dataset(tmp_path / "data", n=24), reencode=0.5,
                                   unjudgeable=0.3))
    out = fit(cfg)
    with open(out / "metrics.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert np.isfinite(float(row["train_loss"])) and "train_unjudgeable" in row



def test_distillation_on_some_sources_only(tmp_path):
    """A source whose teacher is ``none`` trains on its labels alone; the other on its teacher's targets too."""
    from _synth import make_csv_dataset, write_config
    from agegender.train.config import load_config
    from agegender.train.trainer import fit

    src = [{"dataset": "csv", "name": name, "root": str(make_csv_dataset(tmp_path / name, n=16, seed=k)),
            "split": str(tmp_path / f"{name}.csv"), "cache": str(tmp_path / f"cache-{name}"), "teacher": t}
           for k, (name, t) in enumerate((("taught", "fast"), ("alone", "none")))]
    cfg = load_config(write_config(tmp_path, tmp_path / "unused.csv", sources=src, distill=0.5))
    out = fit(cfg)
    assert (out / "teacher-taught.pt").is_file() and not (out / "teacher-alone.pt").exists()
    with open(out / "metrics.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert np.isfinite(float(row["train_loss"])) and np.isfinite(float(row["train_kd_gender"]))


def test_a_face_without_a_gender_is_left_out_of_every_gender_figure(tmp_path):
    """A program may give an age and no gender: such a face counts neither right nor wrong, overall or by group."""
    records, _ = load_fairface_csv(_fairface_layout(tmp_path))
    preds = [PredRow(r.path, 25.0, float("nan") if r.extra["race"] == "Black" and r.gender == "female" else
                     float(r.gender == "female"), "" if r.extra["race"] == "Black" and r.gender == "female"
                     else r.gender, 1) for r in records]
    res = evaluate_records(records, preds, tmp_path / "out", "t", "cmd")
    assert res.gender.accuracy == 1.0
    assert all(b["gender_accuracy"] in (1.0, None) or b["gender_accuracy"] != b["gender_accuracy"]
               for b in res.breakdown)
