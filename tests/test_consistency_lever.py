"""The ``consistency`` lever: re-saved copies join the batch and each pair is pulled to one answer."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch", reason="the train extra (PyTorch) runs the levers")


def _crops(astronaut: np.ndarray, n: int) -> torch.Tensor:
    face = np.asarray(Image.fromarray(astronaut[56:177, 178:273]).resize((112, 112)))
    return torch.from_numpy(np.stack([face] * n))


def _is_grey(c: torch.Tensor) -> bool:
    return bool((c[..., 0] == c[..., 1]).all() and (c[..., 1] == c[..., 2]).all())


def test_copies_are_resaved_faces_about_the_grey_share_of_them_grey(astronaut):
    from agegender.train.levers.consistency import resaved_copies

    x = _crops(astronaut, 64)
    y = resaved_copies(x, 0.5, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == torch.uint8
    diff = (y.float() - x.float()).abs().mean(dim=(1, 2, 3))
    assert (diff < 40).all()  # still the same face
    grey = sum(_is_grey(c) for c in y)
    assert 16 < grey < 48
    assert not any(_is_grey(c) for c in resaved_copies(x, 0.0, torch.Generator().manual_seed(0)))


def _batch(astronaut, n=32, p=0.5, unlabelled_rows=(0, 1)):
    from agegender.train.levers import Batch
    from agegender.train.levers.consistency import Consistency, ConsistencyConfig

    unlabelled = torch.zeros(n, dtype=torch.bool)
    unlabelled[list(unlabelled_rows)] = True
    batch = Batch(torch.arange(100, 100 + n), _crops(astronaut, n), unlabelled,
                  marks={"unjudgeable": unlabelled.clone()})
    lever = Consistency(ConsistencyConfig(p=p))
    lever.crops(batch, torch.Generator().manual_seed(3))
    return lever, batch


def test_copies_join_the_batch_with_their_originals_labels(astronaut):
    lever, batch = _batch(astronaut)
    orig, copy = batch.marks["consistency"]
    k = len(orig)
    assert 0 < k < 30 and len(batch.crops) == len(batch.idx) == len(batch.unlabelled) == 32 + k
    assert torch.equal(copy, torch.arange(32, 32 + k))
    assert not set(orig.tolist()) & {0, 1}  # rows another lever teaches otherwise get no copy
    assert torch.equal(batch.idx[copy], batch.idx[orig])
    assert not batch.unlabelled[copy].any()
    assert len(batch.marks["unjudgeable"]) == 32 + k and not batch.marks["unjudgeable"][copy].any()


def test_the_pull_is_zero_for_agreeing_pairs_and_grows_with_disagreement(astronaut):
    lever, batch = _batch(astronaut)
    n = len(batch.idx)
    same_g, same_a = torch.zeros(n, 2), torch.zeros(n, 101)
    term, parts = lever.loss(batch, same_g, same_a)
    assert float(term) == pytest.approx(0.0, abs=1e-6)
    orig, copy = batch.marks["consistency"]
    apart = same_g.clone()
    apart[copy, 0] = 1.0
    further = same_g.clone()
    further[copy, 0] = 3.0
    assert 0 < float(lever.loss(batch, apart, same_a)[0]) < float(lever.loss(batch, further, same_a)[0])
    assert set(parts) == {"consistency_gender", "consistency_age"}


def test_off_it_changes_nothing_and_draws_nothing(astronaut):
    from agegender.train.levers import Batch
    from agegender.train.levers.consistency import Consistency, ConsistencyConfig

    x = _crops(astronaut, 8)
    batch = Batch(torch.arange(8), x, torch.zeros(8, dtype=torch.bool))
    g = torch.Generator().manual_seed(0)
    lever = Consistency(ConsistencyConfig(p=0.0))
    lever.crops(batch, g)
    assert batch.crops is x and "consistency" not in batch.marks
    assert lever.loss(batch, torch.zeros(8, 2), torch.zeros(8, 101)) is None
    assert torch.equal(torch.rand(1, generator=g), torch.rand(1, generator=torch.Generator().manual_seed(0)))


def test_training_with_pairs_beside_unreadable_crops(tmp_path):
    from _synth import make_csv_dataset, write_config
    from agegender.train.config import load_config
    from agegender.train.trainer import fit

    cfg = load_config(write_config(tmp_path, make_csv_dataset(tmp_path / "data", n=24), unjudgeable=0.3),
                      ["levers.consistency.p=0.5"])
    out = fit(cfg)
    with open(out / "metrics.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert np.isfinite(float(row["train_loss"])) and float(row["train_consistency_gender"]) >= 0
