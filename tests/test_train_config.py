"""The nested training config, its migration from the old flat form, and the lever registry: on the real
recipes (configs/, experiments/configs/) and the configs the shipped cards record (written by old exports)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="training configs need the train extra (torch)")
yaml = pytest.importorskip("yaml")

from agegender.errors import DatasetError  # noqa: E402
from agegender.train import legacy_config  # noqa: E402
from agegender.train.config import PROVENANCE_KEYS, TrainConfig, apply_overrides, get_key, leaf_keys, load_config  # noqa: E402
from agegender.train.legacy_config import MOVED, is_old  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted((REPO / "experiments" / "configs").glob("*.yaml"))


def _flat(path: Path) -> bool:
    return any(is_old(k, v) for k, v in yaml.safe_load(path.read_text()).items())


# recipes in the nested form: the shipped ones, and experiments written since the migration
RECIPES = sorted((REPO / "configs").glob("*.yaml")) + [p for p in EXPERIMENTS if not _flat(p)]
OLD_RECIPES = [p for p in EXPERIMENTS if _flat(p)]  # experiments that kept the old flat form
CARDS = sorted((REPO / "src" / "agegender" / "assets").glob("*.json"))
LEVERS = ("context_mask", "hair_dropout", "reencode", "unjudgeable", "consistency", "domain_aug", "old_print")


def _flatten(nested: dict) -> dict:
    """A nested config dict written back in the old flat form, by the migration table."""
    flat = {k: v for k, v in nested.items() if k.split(".")[0] not in {d.split(".")[0] for d in MOVED.values()}}
    for old, dotted in MOVED.items():
        value = nested
        for part in dotted.split("."):
            value = value.get(part, {}) if isinstance(value, dict) else {}
        if value != {}:
            flat[old] = value
    return flat


def _migration_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "agegender.train.legacy_config"]


def test_there_are_recipes_of_both_forms():
    assert len(RECIPES) >= 10 and len(OLD_RECIPES) >= 30


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_shipped_recipes_are_nested_and_equal_to_their_old_flat_form(path, caplog):
    raw = yaml.safe_load(path.read_text())
    assert not [k for k, v in raw.items() if is_old(k, v)], "configs/ holds the nested form"
    with caplog.at_level(logging.WARNING):
        cfg = load_config(path)
    assert not _migration_warnings(caplog)
    if all(set(block) <= {"p"} for block in (raw.get("levers") or {}).values()):  # keys the flat form had
        assert TrainConfig.from_dict(_flatten(raw), where="flat") == cfg
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg  # config.json round trip


@pytest.mark.parametrize("path", OLD_RECIPES, ids=lambda p: p.name)
def test_old_flat_recipes_load_with_every_key_in_its_new_place(path, caplog):
    raw = yaml.safe_load(path.read_text())
    old = [k for k, v in raw.items() if is_old(k, v)]
    with caplog.at_level(logging.WARNING):
        cfg = load_config(path)
    for k in old:
        new = get_key(cfg, MOVED[k])
        assert new == type(new)(raw[k]), k
    warned = " ".join(_migration_warnings(caplog))
    shown = old[:4]  # the warning names the first moves and counts the rest
    assert all(f"{k} -> {MOVED[k]}" in warned for k in shown)
    assert len(old) <= 4 or f"and {len(old) - 4} more" in warned
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_configs_recorded_by_old_exports_load(caplog):
    """The shipped cards record their runs' configs as the old code saved them (flat); they load, every
    value in its new place, and a run folder's config.json written now reads back the same."""
    seen = 0
    for card in CARDS:
        for d in json.loads(card.read_text()).get("training", {}).get("configs", []):
            d = {k: v for k, v in d.items() if k not in ("taken_from", "interpolated")}
            cfg = TrainConfig.from_dict(d, where=card.name)
            assert all(get_key(cfg, MOVED[k]) == v for k, v in d.items() if is_old(k, v))
            assert TrainConfig.from_dict(cfg.to_dict()) == cfg
            seen += 1
    assert seen >= 3


def test_every_old_key_has_exactly_one_new_place():
    assert set(MOVED.values()) <= set(leaf_keys())
    assert len(set(MOVED.values())) == len(MOVED)
    flat_era = [n for n in LEVERS if n != "consistency"]  # consistency came after the flat form
    assert {f"levers.{n}.p" for n in flat_era} <= set(MOVED.values())
    # each key kept its name in its block (a lever's share is its p); two were renamed, being blocks now
    renamed = {"model": "model.arch", "distill": "distill.weight"}
    for old, dotted in MOVED.items():
        parts = dotted.split(".")
        assert renamed.get(old) == dotted or old == (parts[1] if parts[0] == "levers" else parts[-1]), old


def test_cards_agree_with_the_configs_they_record():
    """What an old export wrote into a card's header (input size, framing, architecture) is what its first
    config reads at its new places."""
    from agegender.card import ModelCard

    for card in CARDS:
        c = ModelCard.load(card)
        cfg = TrainConfig.from_dict({k: v for k, v in c.training["configs"][0].items() if k not in PROVENANCE_KEYS})
        assert cfg.model.input_size == c.input.size
        assert (cfg.model.margin, cfg.model.border) == (c.alignment.margin, c.alignment.border)
        assert c.architecture.startswith(cfg.model.arch)


@pytest.mark.parametrize("text, words", [
    ("optim: {lrr: 0.1}\n", "unknown config key 'optim.lrr' (did you mean 'optim.lr'?)"),
    ("no_such_key: 1\n", "unknown config key 'no_such_key'"),
    ("lr: 0.1\noptim: {lr: 0.2}\n", "optim.lr is given twice, as lr (old flat form) and as optim.lr"),
    ("levers: {reencode: 0.3}\n", "levers.reencode must be a mapping of its keys"),
    ("optim: {epochs: many}\n", "optim.epochs must be of type int, got 'many'"),
    ("data: {nope: 1}\n", "unknown data keys ['nope']"),
])
def test_bad_keys_get_one_line_errors(tmp_path, text, words):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(DatasetError) as err:
        load_config(p)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_set_overrides_nested_keys_and_moves_old_ones(caplog, monkeypatch):
    monkeypatch.setattr(legacy_config, "_warned", set())  # each warning is said once per process
    with caplog.at_level(logging.WARNING):
        cfg = load_config(None, ["optim.lr=3e-4", "levers.reencode.p=0.3", "data.limit=5", "epochs=3",
                                 "distill=0.5", "model=mbv2", "model.freeze_bn=true"])
    assert (cfg.optim.lr, cfg.levers.reencode.p, cfg.data.limit, cfg.optim.epochs) == (3e-4, 0.3, 5, 3)
    assert (cfg.distill.weight, cfg.model.arch, cfg.model.freeze_bn) == (0.5, "mbv2", True)
    assert "--set distill: old flat config key, read as distill.weight" in _migration_warnings(caplog)
    for item, words in (("levers.reencode=0.3", "a block, not a key; set one of its keys (levers.reencode.p, "),
                        ("optim.lrr=1", "unknown config key 'optim.lrr'"), ("data.nope=1", "unknown config key"),
                        ("optim.epochs=x", "'x' is not of type int"), ("lr", "expects key=value")):
        with pytest.raises(DatasetError, match=words.replace("(", r"\(").replace(")", r"\)")):
            apply_overrides(TrainConfig(), [item])


def test_old_attribute_names_read_through_and_cannot_be_set():
    cfg = TrainConfig()
    cfg.model.margin = 0.25
    assert cfg.margin == 0.25 and cfg.border == cfg.model.border
    with pytest.raises(AttributeError, match=r"now optim\.lr"):
        cfg.lr = 0.1
    with pytest.raises(AttributeError):
        _ = cfg.no_such_thing


def test_lever_registry_orders_levers_and_refuses_duplicates():
    from agegender.train.levers import Lever, build_levers, lever_classes, register

    assert [c.name for c in lever_classes()] == list(LEVERS)  # the order they act in within a batch
    assert [f for f in TrainConfig().levers.__dataclass_fields__] == list(LEVERS)
    with pytest.raises(ValueError, match="registered twice"):
        register(type("Again", (Lever,), {"name": "reencode", "order": 999}))
    with pytest.raises(ValueError, match="order 30 is taken by 'reencode'"):
        register(type("Clash", (Lever,), {"name": "clash", "order": 30}))
    assert [c.name for c in lever_classes()] == list(LEVERS)
    cfg = load_config(None, ["levers.context_mask.p=0.5"])
    with pytest.raises(DatasetError, match="context_mask needs border: grey"):
        build_levers(cfg)


def test_the_loop_names_no_lever():
    """Levers plug in through their hooks: the loop, the batch and the data loader never name one."""
    train = REPO / "src" / "agegender" / "train"
    for module in ("engine.py", "trainer.py", "augment.py", "dataset.py"):
        text = (train / module).read_text()
        assert not [n for n in LEVERS if n in text], module
