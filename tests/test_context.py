"""Wide crops that do not give the source away: grey border fill, photo windows, the context mask, crop
caches rebuilt from the faces another cache found, and a model card that carries the fill."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agegender.align import GREY, align_face, visible_window
from agegender.card import ModelCard
from agegender.data.cache import CacheSettings, build_cache, load_cache
from agegender.detect.retinaface import RetinaFaceDetector
from agegender.errors import ModelCardError

REPO = Path(__file__).resolve().parents[1]


def _face_landmarks(image: np.ndarray) -> np.ndarray:
    dets = RetinaFaceDetector().detect(image)
    assert dets, "the astronaut's face is found"
    return max(dets, key=lambda d: d.area).landmarks


def _tight_crop(astronaut: np.ndarray) -> np.ndarray:
    """The astronaut's face cropped about as tightly as UTKFace crops its photos."""
    lm = _face_landmarks(astronaut)
    cx, cy = lm.mean(0)
    half = int(1.1 * np.linalg.norm(lm[0] - lm[4]))
    return astronaut[int(cy) - half : int(cy) + half, int(cx) - half : int(cx) + half].copy()


def test_grey_border_paints_only_past_the_photo(astronaut):
    tight = _tight_crop(astronaut)
    lm = _face_landmarks(tight)
    grey = align_face(tight, lm, 112, margin=0.25, border="grey")
    edge = align_face(tight, lm, 112, margin=0.25, border="edge")
    from agegender.train.levers.context_mask import window_mask

    inside = window_mask(visible_window(lm, tight.shape[1], tight.shape[0], 112, 0.25), 112)
    assert 0.2 < inside.mean() < 0.95, "a wide crop of a tight photo reaches past it"
    # well outside the window: exactly grey; well inside: the same pixels whatever the fill
    from scipy.ndimage import binary_erosion

    outside = binary_erosion(~inside, iterations=2)
    core = binary_erosion(inside, iterations=2)
    assert (grey[outside] == GREY).all()
    assert not (edge[outside] == GREY).all()
    assert np.array_equal(grey[core], edge[core])
    with pytest.raises(ValueError, match="border"):
        align_face(tight, lm, 112, border="black")


def test_context_mask_greys_outside_a_donor_window(astronaut):
    torch = pytest.importorskip("torch", reason="the context mask is training code (train extra)")
    from agegender.train.levers.context_mask import is_tight, mask_context, window_mask

    tight = _tight_crop(astronaut)
    lm_tight, lm_wide = _face_landmarks(tight), _face_landmarks(astronaut)
    windows = torch.tensor(np.stack([
        visible_window(lm_tight, tight.shape[1], tight.shape[0], 96, 0.2),
        visible_window(lm_wide, astronaut.shape[1], astronaut.shape[0], 96, 0.2),
        np.full((4, 2), np.nan),
    ]), dtype=torch.float32)
    assert is_tight(windows, 96).tolist() == [True, False, False]
    crops = torch.from_numpy(np.stack([align_face(astronaut, lm_wide, 96, 0.2, border="grey")] * 3))
    g = torch.Generator().manual_seed(0)
    assert torch.equal(mask_context(crops, windows[:1], 0.0, g), crops)
    out = mask_context(crops, windows[:1], 1.0, g)
    keep = torch.from_numpy(window_mask(windows[0].numpy(), 96))
    for k in range(3):
        assert (out[k][~keep] == GREY).all()
        assert torch.equal(out[k][keep], crops[k][keep])
    assert torch.equal(crops[0], torch.from_numpy(align_face(astronaut, lm_wide, 96, 0.2, border="grey").copy()))


def test_cache_rebuilt_from_another_caches_faces(tmp_path, astronaut_path):
    photo = tmp_path / "astronaut.jpg"
    Image.open(astronaut_path).convert("RGB").save(photo, quality=95)
    paths = [str(photo)]
    first = build_cache(paths, tmp_path / "c112", CacheSettings(size=112), workers=1, progress=False)
    assert first.method[0] == "detected"
    # move the stored landmarks: a cache built from them must follow them, not detect the face again
    shard = tmp_path / "c112" / "shard_00000.npz"
    with np.load(shard) as z:
        parts = {k: z[k] for k in z.files}
    parts["landmarks"] = parts["landmarks"] + np.float32(6.0)
    np.savez(shard, **parts)
    wide = CacheSettings(size=80, margin=0.2, border="grey")
    second = build_cache(paths, tmp_path / "c80", wide, workers=1, progress=False, landmarks_from=tmp_path / "c112")
    moved = parts["landmarks"][0]
    assert np.allclose(second.landmarks[0], moved)
    with Image.open(photo) as im:
        img = np.asarray(im.convert("RGB"))
    assert np.array_equal(second.crops[0], align_face(img, moved.astype(np.float64), 80, 0.2, border="grey"))
    manifest = json.loads((tmp_path / "c80" / "manifest.json").read_text())
    assert manifest["settings"]["border"] == "grey" and load_cache(tmp_path / "c80").crops.shape == (1, 80, 80, 3)
    # a cache from another detector setting is not trusted: the face is detected again
    third = build_cache(paths, tmp_path / "c80b", CacheSettings(size=80, pad=0.3), workers=1, progress=False,
                        landmarks_from=tmp_path / "c112")
    assert not np.allclose(third.landmarks[0], moved)


def test_default_border_keeps_old_cache_keys():
    """The default border adds nothing to the key: caches keep it whether or not they were built before the
    setting existed (pinned for cache version 2; version 1's was 6bacfc858bba)."""
    assert CacheSettings().key() == "1ec29c4c7e2a"
    assert CacheSettings(border="grey").key() != CacheSettings().key()


def test_card_carries_the_border():
    card = json.loads((REPO / "src" / "agegender" / "assets" / "fast.json").read_text())
    assert ModelCard.from_dict(card).alignment.border == "edge"
    card["alignment"]["border"] = "grey"
    assert ModelCard.from_dict(card).alignment.border == "grey"
    card["alignment"]["border"] = "zigzag"
    with pytest.raises(ModelCardError, match="border"):
        ModelCard.from_dict(card)


def test_hair_dropout_greys_only_side_bands(astronaut):
    torch = pytest.importorskip("torch", reason="hair dropout is training code (train extra)")
    from agegender.train.levers.hair_dropout import hide_borders

    crop = align_face(astronaut, _face_landmarks(astronaut), 112, 0.0)
    crops = torch.from_numpy(np.stack([crop] * 64))
    assert torch.equal(hide_borders(crops, 0.0, torch.Generator().manual_seed(0)), crops)
    out = hide_borders(crops, 1.0, torch.Generator().manual_seed(0))
    again = hide_borders(crops, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(out, again) and torch.equal(crops[0], torch.from_numpy(crop))
    inner = slice(17, 95)  # deeper than any band (15 % of 112 = 17 px)
    assert torch.equal(out[:, inner, inner], crops[:, inner, inner])
    bands = []
    for k in range(64):
        changed = (out[k] != crops[k]).any(-1)
        assert changed.any(), "every chosen crop loses at least one side"
        assert (out[k][changed] == GREY).all()
        rows, cols = changed.all(1), changed.all(0)  # a hidden top or bottom band spans whole rows
        bands.append(int(rows[:17].sum() + rows[95:].sum() + cols[:17].sum() + cols[95:].sum()))
    assert min(bands) >= 5 and len(set(bands)) > 10, "bands 6-17 px deep, of varied depth and sides"
    some = hide_borders(crops, 0.3, torch.Generator().manual_seed(1))
    share = float((some != crops).flatten(1).any(1).float().mean())
    assert 0.1 < share < 0.5


def test_context_mask_trains_on_real_faces(tmp_path, astronaut):
    """A run with a wide grey-filled crop, the context mask and hair dropout: tight photos become donors."""
    pytest.importorskip("torch", reason="training tests need the train extra (torch)")
    from _synth import write_config
    from agegender.train.config import load_config
    from agegender.train.trainer import fit

    tight = _tight_crop(astronaut)
    root = tmp_path / "faces"
    root.mkdir()
    rows = []
    rng = np.random.default_rng(0)
    for i in range(12):
        img = tight if i % 2 else astronaut
        img = np.clip(img.astype(int) + rng.integers(-10, 10, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"f{i:02d}.jpg", quality=90)
        rows.append((f"f{i:02d}.jpg", 30 + i, "female"))
    with open(root / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("path", "age", "gender"), *rows])
    cfg_path = write_config(tmp_path, root / "labels.csv", input_size=64, margin=0.2, border="grey",
                            context_mask=0.5, hair_dropout=0.5)
    run = fit(load_config(cfg_path))
    assert (run / "best.pt").exists()
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"]["border"] == "grey" and saved["levers"]["context_mask"] == {"p": 0.5}
    bad = write_config(tmp_path, root / "labels.csv", input_size=64, margin=0.0, context_mask=0.5)
    from agegender.errors import DatasetError

    with pytest.raises(DatasetError, match="context_mask"):
        fit(load_config(bad))


def test_cache_survives_new_file_times_but_not_new_content(tmp_path, astronaut_path):
    """A dataset copied or mounted again (new modification times) keeps its crops; changed bytes do not."""
    import os

    photo = tmp_path / "astronaut.jpg"
    Image.open(astronaut_path).convert("RGB").save(photo, quality=95)
    build_cache([str(photo)], tmp_path / "c", CacheSettings(size=64), workers=1, progress=False)
    shard = tmp_path / "c" / "shard_00000.npz"
    with np.load(shard) as z:
        parts = {k: z[k] for k in z.files}
    parts["crops"] = np.zeros_like(parts["crops"])  # a marker: kept only if the shard is not rebuilt
    np.savez(shard, **parts)
    os.utime(photo, (1_000_000_000, 1_000_000_000))
    kept = build_cache([str(photo)], tmp_path / "c", CacheSettings(size=64), workers=1, progress=False)
    assert not kept.crops.any()
    Image.open(astronaut_path).convert("RGB").save(photo, quality=80)
    rebuilt = build_cache([str(photo)], tmp_path / "c", CacheSettings(size=64), workers=1, progress=False)
    assert rebuilt.crops.any()
