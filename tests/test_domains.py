"""Training on several sources: the All-Age-Faces adapter and split, near-identical twins, sampling shares,
photo-domain augmentation, per-source validation, and fine-tuning a shipped ONNX network."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch", reason="training tests need the train extra (torch)")

from _synth import make_csv_dataset, write_config  # noqa: E402
from agegender.data.aaf import aaf_split_rows, load_aaf  # noqa: E402
from agegender.data.twins import group_pairs, read_twins, thumbnails, twin_pairs, write_twins  # noqa: E402
from agegender.errors import DatasetError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _make_aaf(root: Path, n: int = 40) -> None:
    """The layout get_aaf.sh produces: original/NNNNNAkk.jpg, image_sets/{train,val}.txt (0 female, 1 male)."""
    rng = np.random.default_rng(0)
    (root / "original").mkdir(parents=True)
    (root / "image_sets").mkdir()
    lines = {"train.txt": [], "val.txt": []}
    for i in range(n):
        age = int(rng.integers(2, 80))
        name = f"{i:05d}A{age:02d}.jpg"
        Image.fromarray(rng.integers(0, 255, (40, 36, 3), dtype=np.uint8)).save(root / "original" / name)
        lines["train.txt" if i % 2 else "val.txt"].append(f"{name} {i % 3 % 2}")
    lines["train.txt"] += ["garbage line", "99999A20.jpg 1"]  # unparseable, and an image that is missing
    for f, ls in lines.items():
        (root / "image_sets" / f).write_text("\n".join(ls) + "\n")


def test_aaf_adapter_and_official_split(tmp_path):
    _make_aaf(tmp_path / "aaf")
    records, report = load_aaf(tmp_path / "aaf")
    assert len(records) == 40 and report.kept == 40
    assert report.dropped == {"unparseable line": 1, "image missing": 1}
    r = next(x for x in records if Path(x.path).name.startswith("00003A"))
    assert r.age == float(Path(r.path).stem[-2:]) and r.source == "aaf"
    assert r.gender == "female" and r.extra["aaf_part"] == "train"  # listed as "00003Akk.jpg 0"
    m = next(x for x in records if Path(x.path).name.startswith("00004A"))
    assert m.gender == "male" and m.extra["aaf_part"] == "val"  # listed as "00004Akk.jpg 1"
    rows = aaf_split_rows(records, ["h"] * len(records), val_fraction=0.25)
    part = {row.path: row.part for row in rows}
    # the official val list is our test part, untouched; the official train list feeds train and val
    assert all(part[x.path] == "test" for x in records if x.extra["aaf_part"] == "val")
    carved = [x for x in records if x.extra["aaf_part"] == "train"]
    assert {part[x.path] for x in carved} == {"train", "val"}
    assert sum(part[x.path] == "val" for x in carved) < len(carved) / 2


def test_aaf_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="All-Age-Faces not found"):
        load_aaf(tmp_path)


def test_twins_found_by_thumbnail_correlation(tmp_path, astronaut_path, coffee_path):
    img = Image.open(astronaut_path).convert("RGB")
    img.save(tmp_path / "a.jpg", quality=95)
    img.resize((200, 200)).save(tmp_path / "a_small_recoded.jpg", quality=40)  # same photo, other bytes
    Image.open(coffee_path).convert("RGB").save(tmp_path / "c.jpg")
    paths = [str(tmp_path / n) for n in ("a.jpg", "c.jpg", "a_small_recoded.jpg")]
    th = thumbnails(paths, progress=False)
    pairs = twin_pairs(th, 0.97)
    assert [(i, j) for i, j, _ in pairs] == [(0, 2)]
    groups = group_pairs(3, pairs)
    write_twins(tmp_path / "twins.csv", ["a", "c", "b"], groups)
    assert read_twins(tmp_path / "twins.csv") == {0: ["a", "b"]}


def test_group_pairs_joins_chains():
    assert sorted(map(sorted, group_pairs(6, [(0, 1, 1.0), (1, 4, 1.0), (2, 3, 1.0)]))) == [[0, 1, 4], [2, 3]]


def test_domain_augmentation_is_seeded_and_changes_images(astronaut):
    from agegender.train.augment import augment
    from agegender.train.levers.domain_aug import DomainAug, DomainAugConfig

    crop = np.asarray(Image.fromarray(np.asarray(astronaut)[56:177, 178:273]).resize((112, 112)))
    x = torch.from_numpy(np.stack([crop] * 16))
    domain = [DomainAug(DomainAugConfig(p=0.5))]
    a = augment(x, torch.Generator().manual_seed(3), max_rotate=25, levers=domain)
    b = augment(x, torch.Generator().manual_seed(3), max_rotate=25, levers=domain)
    plain = augment(x, torch.Generator().manual_seed(3))
    assert a.shape == (16, 3, 112, 112) and torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not torch.allclose(a, plain)


def test_each_domain_effect_keeps_range():
    from agegender.train.levers.domain_aug import domain_shift, gaussian_blur

    img = torch.rand(8, 3, 112, 112, generator=torch.Generator().manual_seed(0))
    out = domain_shift(img, torch.Generator().manual_seed(1), p=1.0)  # every effect on every image
    assert out.shape == img.shape and out.min() >= 0 and out.max() <= 1
    assert (out - img).abs().mean() > 0.05
    blurred = gaussian_blur(img, 2.0)
    assert blurred.shape == img.shape and blurred.std() < img.std() / 2


def test_old_print_fades_and_tones_every_chosen_image_and_leaves_the_rest(astronaut):
    from agegender.train.levers.old_print import old_print

    crop = np.asarray(Image.fromarray(np.asarray(astronaut)[56:177, 178:273]).resize((112, 112)))
    img = torch.from_numpy(np.stack([crop] * 64)).permute(0, 3, 1, 2).float() / 255
    out = old_print(img, torch.Generator().manual_seed(0), p=0.5)
    assert torch.equal(out, old_print(img, torch.Generator().manual_seed(0), p=0.5))
    assert out.min() >= 0 and out.max() <= 1
    changed = (out - img).abs().flatten(1).mean(1) > 0.01
    assert 16 < int(changed.sum()) < 48 and torch.equal(out[~changed], img[~changed])
    # faded: less contrast than the photo in every print; toned: most lose the photo's colours
    assert (out[changed].flatten(1).std(1) < img[changed].flatten(1).std(1)).all()
    hue = out[changed].mean((2, 3))
    assert ((hue[:, 0] >= hue[:, 1]) & (hue[:, 1] >= hue[:, 2])).float().mean() > 0.6


def test_sample_weights_give_each_source_its_share():
    from agegender.train.dataset import Arrays, concat_arrays
    from agegender.train.engine import sample_weights

    def arrays(n: int, ages: list[float], genders: list[int]) -> Arrays:
        a = torch.tensor(ages, dtype=torch.float32)
        return Arrays(torch.zeros(n, 4, 4, 3, dtype=torch.uint8), a, a, a, torch.tensor(genders), [""] * n, [None] * n)

    big = arrays(6, [25, 25, 25, 25, 5, 5], [0, 0, 0, 0, 1, 1])
    small = arrays(2, [70, 30], [1, 0])
    data = concat_arrays([big, small], ["big", "small"])
    w = sample_weights(data, [0.25, 0.75], balance=0.0).numpy()
    assert w[:6].sum() == pytest.approx(0.25) and w[6:].sum() == pytest.approx(0.75)
    assert np.allclose(w[:6], w[0])  # no balance: every row of a source alike
    wb = sample_weights(data, [0.25, 0.75], balance=1.0).numpy()
    # full balance: the two cells of the big source (4 adult men, 2 girls) get equal mass
    assert wb[:4].sum() == pytest.approx(wb[4:6].sum())


def test_group_balance_gives_each_group_of_a_source_the_same_share():
    from agegender.data.records import Record
    from agegender.train.dataset import Arrays
    from agegender.train.engine import sample_weights

    races = ["White"] * 6 + ["Asian"] * 2 + [""]
    recs = [Record(f"{i}.jpg", 30.0, 30.0, 30.0, "male", extra={"race": r} if r else {}) for i, r in enumerate(races)]
    a = torch.full((len(recs),), 30.0)
    data = Arrays(torch.zeros(len(recs), 4, 4, 3, dtype=torch.uint8), a, a, a, torch.zeros(len(recs), dtype=torch.long),
                  [r.path for r in recs], recs)
    w = sample_weights(data, [1.0], balance=0.0, balance_by="race", group_balance=1.0).numpy()
    # White and Asian get equal shares; the row without a race weighs as one of a group of the mean size (4)
    assert w[:6].sum() == pytest.approx(w[6:8].sum())
    assert w[8] == pytest.approx(w[6:8].sum() / 4)
    half = sample_weights(data, [1.0], balance=0.0, balance_by="race", group_balance=0.5).numpy()
    assert w[0] < half[0] < 1 / 9  # partial balance lies between full balance and none
    assert np.allclose(sample_weights(data, [1.0], balance=0.0, balance_by="race").numpy(), 1 / 9)


def test_two_sources_train_with_per_source_validation(tmp_path):
    from agegender.train.config import load_config
    from agegender.train.export import export_calibrated
    from agegender.train.trainer import fit

    a = make_csv_dataset(tmp_path / "a", n=40, seed=1)
    b = make_csv_dataset(tmp_path / "b", n=40, seed=2)
    drop = tmp_path / "drop.csv"
    drop.write_text("path\nimg_000.jpg\nimg_001.jpg\n")
    sources = [
        {"dataset": "csv", "name": "a", "root": str(a), "split": str(tmp_path / "sa.csv"),
         "cache": str(tmp_path / "ca"), "weight": 0.7},
        {"dataset": "csv", "name": "b", "root": str(b), "split": str(tmp_path / "sb.csv"),
         "cache": str(tmp_path / "cb"), "weight": 0.3, "drop": str(drop)},
    ]
    cfg_path = write_config(tmp_path, a, sources=sources, epoch_size=32, balance=0.5, domain_aug=0.2,
                            max_rotate=25)
    cfg = load_config(cfg_path)
    assert [s.weight for s in cfg.all_sources()] == [0.7, 0.3]
    run = fit(cfg)
    with open(run / "metrics.csv") as fh:
        row = next(csv.DictReader(fh))
    for src in ("a", "b"):
        assert f"val_{src}_mae" in row and f"val_{src}_objective" in row
    mean = (float(row["val_a_objective"]) + float(row["val_b_objective"])) / 2
    assert float(row["val_objective"]) == pytest.approx(mean, rel=1e-5)
    card, report = export_calibrated([run], tmp_path / "m.onnx", flip=False)
    assert set(report["test_by_source"]) == {"a", "b"}
    assert "csv" in card.training["data"]


def test_init_from_shipped_onnx_reproduces_it():
    """A network taken back out of the shipped ONNX graph computes what the graph computes."""
    import onnxruntime as ort

    from agegender.models import create_model
    from agegender.train.augment import normalize
    from agegender.train.trainer import init_weights

    path = REPO / "src" / "agegender" / "assets" / "fast.onnx"
    x = normalize(torch.randint(0, 255, (2, 112, 112, 3), dtype=torch.uint8))
    model = create_model("attn_mbv2", pretrained=False)
    init_weights(model, str(path))
    with torch.no_grad():
        g, a, _ = model.eval()(x)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    og, oa, _ = sess.run(None, {"image": x.numpy()})
    assert np.abs(og - g.numpy()).max() < 1e-4 and np.abs(oa - a.numpy()).max() < 1e-4
    # ``#0`` of a single-network export is that network, heads included (they once stayed random)
    first = create_model("attn_mbv2", pretrained=False)
    init_weights(first, f"{path}#0")
    with torch.no_grad():
        g0, a0, _ = first.eval()(x)
    assert np.abs(og - g0.numpy()).max() < 1e-4 and np.abs(oa - a0.numpy()).max() < 1e-4
    with pytest.raises(ValueError, match="asked for member 3"):
        init_weights(create_model("attn_mbv2", pretrained=False), f"{path}#3")


def test_recalibrated_batch_norms_keep_the_function_and_can_train(astronaut):
    """After an ONNX restore, batch norms re-estimated from crops give the same outputs in evaluation mode,
    and in training mode (batch statistics) nearly the same, where the restored placeholders do not."""
    from agegender.models import create_model
    from agegender.train.augment import normalize
    from agegender.train.onnx_weights import recalibrate_batchnorm
    from agegender.train.trainer import init_weights

    rng = np.random.default_rng(0)
    face = np.asarray(Image.fromarray(astronaut).resize((112, 112)))
    # the same photo shifted, mirrored and re-lit: crops alike enough for batch statistics to mean something
    crops = np.stack([np.clip(np.roll(face[:, :: rng.choice([1, -1])], rng.integers(-6, 7, 2), (0, 1))
                              * rng.uniform(0.8, 1.2), 0, 255).astype(np.uint8) for _ in range(64)])
    crops = torch.from_numpy(crops)
    model = create_model("attn_mbv2", pretrained=False, dropout=0.0)
    init_weights(model, str(REPO / "src" / "agegender" / "assets" / "fast.onnx"))
    x = normalize(crops[:32])
    with torch.no_grad():
        before = model.eval()(x)[0]
        placeholder = model.train()(x)[0]
    init_weights(model, str(REPO / "src" / "agegender" / "assets" / "fast.onnx"))  # undo the momentum update
    assert recalibrate_batchnorm(model, crops[32:]) > 50
    with torch.no_grad():
        after = model.eval()(x)[0]
        live = model.train()(x)[0]
    assert (after - before).abs().max() < 1e-3
    assert (live - before).abs().mean() < 0.5 * (placeholder - before).abs().mean()


def test_export_mixes_a_new_run_with_a_shipped_network(tmp_path):
    """``agegender export RUN model.onnx#K``: the shipped network joins the ensemble as it is, and the
    card says where it came from."""
    import json as _json

    from agegender.train.config import load_config
    from agegender.train.export import export_calibrated
    from agegender.train.trainer import fit

    fast = REPO / "src" / "agegender" / "assets" / "fast.onnx"
    a = make_csv_dataset(tmp_path / "a", n=24, seed=3)
    run = fit(load_config(write_config(tmp_path, a)))
    card, report = export_calibrated([run, f"{fast}#0"], tmp_path / "mix.onnx", flip=False)
    fast_card = _json.loads(fast.with_suffix(".json").read_text())
    taken = card.training["members_taken_from"]
    assert [t["sha256"] for t in taken] == [fast_card["sha256"]]
    assert card.architecture.count("attn_mbv2") == 2 and report["parity_max_abs_diff"] < 1e-4


def test_each_source_learns_from_its_own_teacher(tmp_path):
    """Distillation with a teacher per source: source a's soft targets come from ``fast``, source b's from
    the mean of ``fast`` and ``default`` (``fast+default``); the card names both teachers."""
    from agegender.runtime import ModelRuntime
    from agegender.train.config import load_config
    from agegender.train.dataset import load_arrays
    from agegender.train.export import export_run
    from agegender.train.trainer import fit, teacher_probabilities

    a = make_csv_dataset(tmp_path / "a", n=24, seed=4)
    b = make_csv_dataset(tmp_path / "b", n=24, seed=5)
    sources = [
        {"dataset": "csv", "name": "a", "root": str(a), "split": str(tmp_path / "sa.csv"),
         "cache": str(tmp_path / "ca"), "teacher": "fast"},
        {"dataset": "csv", "name": "b", "root": str(b), "split": str(tmp_path / "sb.csv"),
         "cache": str(tmp_path / "cb"), "teacher": "fast+default"},
    ]
    cfg_path = write_config(tmp_path, a, sources=sources, epoch_size=32, distill=0.5)
    run = fit(load_config(cfg_path))
    with open(run / "metrics.csv") as fh:
        assert float(next(csv.DictReader(fh))["train_kd_age"]) > 0
    saved = {k: torch.load(run / f"teacher-{k}.pt", weights_only=False) for k in ("a", "b")}
    by_source = load_arrays(load_config(cfg_path), parts=("train",))["train"].by_source()
    crops_a, crops_b = by_source["a"].crops.numpy(), by_source["b"].crops.numpy()
    fg, fa = teacher_probabilities("fast", crops_b)
    dg, da = teacher_probabilities("default", crops_b)
    assert torch.allclose(saved["b"]["gender"], (fg + dg) / 2, atol=1e-5)
    assert torch.allclose(saved["b"]["age"], (fa + da) / 2, atol=1e-5)
    assert torch.allclose(saved["a"]["gender"], teacher_probabilities("fast", crops_a)[0], atol=1e-5)
    card, _ = export_run([run], tmp_path / "s.onnx", flip=False)
    assert {t["sha256"] for t in card.training["distilled_from"]} == {
        ModelRuntime("fast").card.sha256, ModelRuntime("default").card.sha256}
