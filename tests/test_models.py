"""Networks, losses, augmentation and calibration (PyTorch side)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs the train extra (torch)")

from agegender.models import create_model, list_models, register_model  # noqa: E402
from agegender.train.losses import gaussian_targets, multitask_loss  # noqa: E402


def test_registry_refuses_duplicates_and_unknown():
    assert {"attn_mbv2", "mbv2", "attn_mbv2_nogender"} <= set(list_models())
    with pytest.raises(ValueError, match="already registered"):
        register_model("attn_mbv2")(lambda pretrained=False: None)
    with pytest.raises(KeyError, match="unknown model"):
        create_model("nope")


@pytest.mark.parametrize("name", ["attn_mbv2", "mbv2", "attn_mbv2_nogender", "attn_mbv2_face", "attn_mbv2_x2"])
def test_forward_shapes(name):
    m = create_model(name).eval()
    g, a, att = m(torch.randn(2, 3, 112, 112))
    assert g.shape == (2, 2) and a.shape == (2, 101) and att.shape == (2, 1, 4, 4)
    assert float(att.min()) >= 0 and float(att.max()) <= 1


def test_age_head_sees_gender():
    """Changing only the gender logits changes the age output iff the model feeds gender to age."""
    for name, expect in (("attn_mbv2", True), ("attn_mbv2_nogender", False)):
        m = create_model(name).eval()
        emb = torch.randn(1, 256)
        g = m.gender_head(emb)
        if m.gender_to_age:
            a1 = m.age_head(torch.cat([emb, torch.tensor([[1.0, 0.0]])], 1))
            a2 = m.age_head(torch.cat([emb, torch.tensor([[0.0, 1.0]])], 1))
            assert not torch.allclose(a1, a2)
        assert m.gender_to_age is expect and g.shape == (1, 2)


def test_face_only_network_ignores_the_border_and_loads_full_crop_weights():
    """attn_mbv2_face reads nothing of the crop's outer 10 %: changing it changes no output, while changing
    one pixel inside does; a full-crop network's weights load into it as they are (no new parameters)."""
    full = create_model("attn_mbv2").eval()
    face = create_model("attn_mbv2_face").eval()
    face.load_state_dict(full.state_dict())
    x = torch.randn(2, 3, 112, 112)
    y = x.clone()
    y[..., :11, :] = torch.randn(2, 3, 11, 112)
    y[..., :, 101:] = 5.0
    with torch.no_grad():
        for a, b in zip(face(x), face(y)):
            assert torch.equal(a, b)
        inner = x.clone()
        inner[..., 30:80, 30:80] += 3.0  # a patch inside (one pixel moves a randomly initialised net too little)
        assert not torch.equal(face(x)[1], face(inner)[1])
        # away from the border the two networks agree in what they see: the masked input into the full one
        masked = x.clone()
        masked[..., :11, :] = 0
        masked[..., 101:, :] = 0
        masked[..., :, :11] = 0
        masked[..., :, 101:] = 0
        assert torch.allclose(face(x)[1], full(masked)[1], atol=1e-5)


def test_gaussian_targets():
    t = gaussian_targets(torch.tensor([0.0, 30.0, 100.0]), sigma=2.0)
    assert torch.allclose(t.sum(1), torch.ones(3))
    assert t[1].argmax() == 30 and t[0].argmax() == 0 and t[2].argmax() == 100


def test_range_loss_prefers_mass_inside():
    gl = torch.zeros(1, 2)
    inside = torch.full((1, 101), -10.0)
    inside[0, 25:33] = 5.0
    outside = torch.full((1, 101), -10.0)
    outside[0, 60:70] = 5.0
    args = (torch.tensor([-1]), torch.tensor([-1.0]), torch.tensor([25.0]), torch.tensor([32.0]))
    lin, _ = multitask_loss(gl, inside, *args)
    lout, parts = multitask_loss(gl, outside, *args)
    assert "gender" not in parts  # unknown gender is masked
    assert float(lin) < 0.01 < float(lout)


def test_augment_shapes_and_determinism():
    from agegender.train.augment import augment

    x = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (4, 112, 112, 3), dtype=np.uint8))
    a = augment(x, torch.Generator().manual_seed(1))
    b = augment(x, torch.Generator().manual_seed(1))
    assert a.shape == (4, 3, 112, 112) and torch.equal(a, b)


def test_temperature_recovers_overconfidence():
    from agegender.train.calibrate import calibrate

    rng = np.random.default_rng(0)
    n = 4000
    true_logit = rng.normal(0, 2, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-true_logit))).astype(int)
    g = np.stack([np.zeros(n), 3.0 * true_logit], 1)  # 3x overconfident
    age = rng.integers(10, 60, n).astype(float)
    a = -0.5 * ((np.arange(101)[None] - age[:, None]) / 1.0) ** 2  # too sharp vs the noise below
    age_noisy = age + rng.normal(0, 4, n).round()
    cal = calibrate(g, a, y, age_noisy)
    assert 2.5 < cal.gender_temperature < 3.6
    assert cal.gender_ece_after < cal.gender_ece_before
    assert cal.age_temperature > 1 and cal.age_nll_after < cal.age_nll_before


def test_degrade_augmentation_changes_pixels_deterministically():
    from agegender.train.augment import augment, jpeg_roundtrip

    x = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (4, 112, 112, 3), dtype=np.uint8))
    a = augment(x, torch.Generator().manual_seed(1), p_degrade=1.0)
    b = augment(x, torch.Generator().manual_seed(1), p_degrade=1.0)
    assert torch.equal(a, b) and a.shape == (4, 3, 112, 112)
    j = jpeg_roundtrip(x, [0], [20])
    assert not torch.equal(j[0], x[0]) and torch.equal(j[1:], x[1:])


def test_a_widened_shipped_network_answers_as_the_shipped_graph(astronaut):
    """attn_mbv2_x2 started from the shipped fast.onnx (``model.init_arch``) computes what that graph computes:
    exactly without noise; with the noise that lets the copies learn, within a small shift of the logits.
    Each widened block has twice the hidden channels, and the noisy copies differ from their originals."""
    from pathlib import Path

    import onnxruntime as ort
    from PIL import Image

    from agegender.models.widen import widen_into
    from agegender.train.augment import normalize
    from agegender.train.config import ModelConfig
    from agegender.train.trainer import init_weights, start_network

    path = Path(__file__).resolve().parents[1] / "src" / "agegender" / "assets" / "fast.onnx"
    face = np.asarray(Image.fromarray(astronaut).resize((112, 112)))
    x = normalize(torch.from_numpy(np.stack([face, face[:, ::-1].copy()])))
    og, oa, _ = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})
    narrow = create_model("attn_mbv2", dropout=0.0)
    init_weights(narrow, str(path))
    exact = widen_into(narrow, create_model("attn_mbv2_x2", dropout=0.0))
    noisy = start_network(ModelConfig(arch="attn_mbv2_x2", init=str(path), init_arch="attn_mbv2", dropout=0.0))
    with torch.no_grad():
        (g, a, _), (gn, an, _) = exact.eval()(x), noisy.eval()(x)
    assert np.abs(og - g.numpy()).max() < 1e-4 and np.abs(oa - a.numpy()).max() < 1e-4
    assert 0 < np.abs(og - gn.numpy()).max() < 0.1 * np.abs(og).max()
    assert np.abs(oa - an.numpy()).max() < 0.1 * np.abs(oa).max()
    w_narrow = narrow.backbone.features[2].conv[0][0].weight
    w_wide = noisy.backbone.features[2].conv[0][0].weight
    h = w_narrow.shape[0]
    assert w_wide.shape[0] == 2 * h and torch.equal(w_wide[:h], w_narrow)
    assert not torch.allclose(w_wide[h:], w_narrow)


def test_widening_refuses_what_it_cannot_widen():
    from agegender.models.backbones import MobileNetV2, load_imagenet_weights
    from agegender.models.widen import widen_into

    with pytest.raises(ValueError, match="no tensor"):
        widen_into(create_model("mbv2"), create_model("attn_mbv2_x2"))  # no attention block to fill
    with pytest.raises(ValueError, match="cannot be widened"):
        widen_into(create_model("attn_mbv2_x2"), create_model("attn_mbv2"))
    with pytest.raises(ValueError, match="at least 1"):
        MobileNetV2(expand_scale=0)
    with pytest.raises(ValueError, match="widen such a network"):
        load_imagenet_weights(MobileNetV2(expand_scale=2))
