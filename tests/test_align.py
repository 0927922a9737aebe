"""Similarity estimation and warping used to crop faces (inference and training share this code)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from agegender.align import TEMPLATE, align_face, center_crop, estimate_similarity, template_points, warp_affine


def _similarity(angle: float, scale: float, tx: float, ty: float) -> np.ndarray:
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    return np.array([[c, -s, tx], [s, c, ty]], dtype=np.float64)


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def test_template_points_geometry():
    p0 = template_points(112, 0.0)
    np.testing.assert_allclose(p0, TEMPLATE * 112)
    # a positive margin shrinks the face towards the centre, a negative one zooms in
    pm = template_points(112, 0.25)
    centre = np.array([56.0, 56.0])
    np.testing.assert_allclose(pm - centre, (p0 - centre) / 1.5)
    assert np.all(np.abs(template_points(112, -0.1) - centre) > np.abs(p0 - centre) - 1e-9)
    # eyes above nose above mouth; left eye left of right eye
    assert p0[0, 0] < p0[1, 0] and p0[3, 0] < p0[4, 0]
    assert p0[0, 1] < p0[2, 1] < p0[3, 1]
    with pytest.raises(ValueError):
        template_points(0, 0.0)
    with pytest.raises(ValueError):
        template_points(112, -0.5)


@pytest.mark.parametrize("seed", range(5))
def test_estimate_similarity_recovers_known_transform(seed):
    rng = np.random.default_rng(seed)
    m = _similarity(rng.uniform(-math.pi, math.pi), rng.uniform(0.2, 5.0), *rng.uniform(-300, 300, 2))
    src = template_points(112, rng.uniform(-0.2, 0.4))
    dst = _apply(m, src)
    est = estimate_similarity(src, dst)
    assert est.shape == (2, 3)
    np.testing.assert_allclose(est, m, atol=1e-6)
    np.testing.assert_allclose(_apply(est, src), dst, atol=1e-6)


def test_estimate_similarity_is_least_squares_with_noise():
    rng = np.random.default_rng(7)
    m = _similarity(0.3, 1.7, 40.0, -12.0)
    src = template_points(200, 0.1)
    dst = _apply(m, src) + rng.normal(0, 0.5, src.shape)
    est = estimate_similarity(src, dst)
    np.testing.assert_allclose(est, m, atol=0.05 * np.abs(m).max())


def test_estimate_similarity_identity():
    pts = template_points(112, 0.0)
    np.testing.assert_allclose(estimate_similarity(pts, pts), [[1, 0, 0], [0, 1, 0]], atol=1e-9)


def test_estimate_similarity_never_reflects():
    # a mirror image is not a similarity: the result must still be a proper rotation (det > 0)
    src = template_points(112, 0.0)
    dst = src * np.array([-1.0, 1.0])
    est = estimate_similarity(src, dst)
    assert np.linalg.det(est[:, :2]) > 0


@pytest.mark.parametrize(
    "src, dst",
    [
        (np.full((5, 2), 3.0), template_points(112, 0.0)),  # all points coincide
        (np.zeros((1, 2)), np.zeros((1, 2))),  # a single point
        (template_points(112, 0.0), template_points(112, 0.0)[:4]),  # shape mismatch
        (np.zeros((5, 3)), np.zeros((5, 3))),  # not 2-D points
        (np.zeros(10), np.zeros(10)),
    ],
)
def test_estimate_similarity_refuses_degenerate(src, dst):
    with pytest.raises(ValueError):
        estimate_similarity(src, dst)


COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255)]


@pytest.mark.parametrize(
    "size, margin, angle, scale", [(112, 0.0, 0.0, 2.0), (112, 0.2, 0.35, 2.5), (96, -0.1, -0.6, 3.0)]
)
def test_align_face_puts_landmarks_on_template(size, margin, angle, scale):
    """Dots drawn at known landmarks land on template_points(size, margin) after alignment."""
    tpl = template_points(size, margin)
    m = _similarity(angle, scale, 0.0, 0.0)
    lms = _apply(m, tpl)
    lms += np.array([250.0, 200.0]) - lms.mean(0)  # somewhere inside a 500 x 400 image
    img = Image.new("RGB", (500, 400), (128, 128, 128))
    draw = ImageDraw.Draw(img)
    r = 3.0 * scale  # 3 pixels in the crop
    for (x, y), col in zip(lms, COLOURS, strict=True):
        draw.ellipse([x - r, y - r, x + r, y + r], fill=col)
    crop = align_face(np.asarray(img), lms, size=size, margin=margin)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    for (x, y), col in zip(tpl, COLOURS, strict=True):
        px = crop[int(round(y)), int(round(x))].astype(int)
        assert np.abs(px - np.array(col)).max() < 60, (x, y, px, col)
    # and the background stays background away from the dots
    assert np.abs(crop[2, 2].astype(int) - 128).max() < 5


def test_align_face_left_right_not_mirrored():
    """Image-left eye stays crop-left: no reflection sneaks in."""
    size = 112
    tpl = template_points(size, 0.0)
    lms = tpl * 1.5 + 20
    img = np.full((260, 260, 3), 128, np.uint8)
    img[:, :130] = (200, 0, 0)  # left half red
    img[:, 130:] = (0, 0, 200)  # right half blue
    crop = align_face(img, lms, size=size)
    assert crop[56, 5, 0] > 150 and crop[56, 5, 2] < 50
    assert crop[56, 106, 2] > 150 and crop[56, 106, 0] < 50


def test_warp_affine_identity_roundtrip(astronaut):
    region = np.ascontiguousarray(astronaut[100:228, 150:278])
    m = np.array([[1.0, 0.0, -150.0], [0.0, 1.0, -100.0]])
    out = warp_affine(np.ascontiguousarray(astronaut), m, 128)
    assert out.shape == (128, 128, 3)
    assert np.abs(out.astype(int) - region.astype(int)).mean() < 1.0


@pytest.mark.parametrize("corner", [(0, 0), (99, 0), (0, 79), (99, 79)])
def test_warp_affine_replicates_edges(corner):
    """A crop that reaches past the image border repeats edge pixels: no black bars."""
    h, w = 80, 100
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = 200
    img[..., 1] = 120
    img[..., 2] = 40
    cx, cy = corner
    size = 64
    # crop centred on the corner pixel, at scale 1: three quarters of it lies outside the image
    m = np.array([[1.0, 0.0, size / 2 - cx], [0.0, 1.0, size / 2 - cy]])
    out = warp_affine(img, m, size)
    assert out.shape == (size, size, 3)
    assert np.abs(out.astype(int) - np.array([200, 120, 40])).max() <= 1


def test_warp_affine_edge_values_are_the_border_row():
    """Outside the image, each output pixel takes the value of the nearest border pixel."""
    img = np.zeros((50, 60, 3), np.uint8)
    img[:, :, 0] = np.arange(60, dtype=np.uint8)[None, :] * 4  # red grows to the right
    img[:, :, 1] = np.arange(50, dtype=np.uint8)[:, None] * 5  # green grows downwards
    size = 40
    m = np.array([[1.0, 0.0, 20.0], [0.0, 1.0, 10.0]])  # image origin at (20, 10) in the crop
    out = warp_affine(img, m, size).astype(int)
    # crop columns left of the image repeat column 0 (red 0), rows above it repeat row 0 (green 0)
    assert out[15:, :18, 0].max() <= 2
    assert out[:8, 22:, 1].max() <= 2
    # the top-left corner region is the corner pixel; no black anywhere the image is non-black
    assert not (out[25:, 25:].sum(-1) == 0).any()


def test_center_crop_shape_and_content():
    img = np.zeros((90, 160, 3), np.uint8)
    img[:, :80] = (220, 0, 0)
    img[:, 80:] = (0, 0, 220)
    for size in (32, 112, 224):
        out = center_crop(img, size)
        assert out.shape == (size, size, 3) and out.dtype == np.uint8
        assert out[size // 2, 2, 0] > 150 and out[size // 2, size - 3, 2] > 150
    for shape in ((10, 10, 3), (300, 20, 3), (1, 1, 3)):
        assert center_crop(np.full(shape, 77, np.uint8), 64, margin=0.2).shape == (64, 64, 3)
    with pytest.raises(ValueError):
        center_crop(img, 112, margin=-0.5)


def test_center_crop_square_is_a_resize():
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (14, 14, 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(small).resize((112, 112), Image.NEAREST))
    out = center_crop(img, 112, margin=0.0)
    assert np.abs(out.astype(int) - img.astype(int)).mean() < 2.0


def test_stress_transforms_hit_the_same_part_of_the_face_in_every_view(astronaut):
    """A two-view crop (tight, wide at margin 0.25): the occluder covers the lower face in both views, at
    the same place of the photo, and the wide view keeps its forehead and sides."""
    from agegender.align import align_views
    from agegender.eval.stress import TRANSFORMS, stress_sets, transform_views
    from agegender.predictor import Predictor

    det = Predictor().detect(astronaut)[0]
    crops = align_views(astronaut, det.landmarks, 112, ((0.0, "edge"), (0.25, "grey")))[None]
    occ = transform_views(TRANSFORMS["occluded (lower face)"], crops, (0.0, 0.25))
    tight, wide = occ[0, ..., :3], occ[0, ..., 3:]
    assert (tight[80:, :] == 128).all() and (tight[:60] == crops[0, :60, :, :3]).all()
    zoom = 1 / 1.5
    y = int(56 + (100 - 56) * zoom) + 1  # tight row 100 in the wide view
    assert (wide[y, int(56 - 30 * zoom) : int(56 + 30 * zoom)] == 128).all()
    assert (wide[:60] == crops[0, :60, :, 3:]).all()  # above the mouth: untouched
    assert (wide[100:, :5] == crops[0, 100:, :5, 3:]).all()  # beside the tight crop: untouched
    hair = transform_views(TRANSFORMS["hair covered (sides and top)"], crops, (0.0, 0.25))
    tight, wide = hair[0, ..., :3], hair[0, ..., 3:]
    assert (tight[:13] == 128).all() and (tight[:, :13] == 128).all() and (tight[:, 99:] == 128).all()
    assert (tight[14:, 14:98] == crops[0, 14:, 14:98, :3]).all()  # the face and chin stay
    assert (wide[:, :27] == 128).all() and (wide[40:, 30:82] == crops[0, 40:, 30:82, 3:]).all()
    sets = stress_sets(crops, det.landmarks[None], (0.0, 0.25))
    assert all(x.shape[1:] == crops.shape[1:] and len(x) == len(i) for i, x in sets.values())
    with pytest.raises(ValueError, match="6 channels for 1 view"):
        transform_views(TRANSFORMS["low light"], crops, (0.0,))


def test_old_print_and_sharpening_stress_change_tone_and_detail_as_named(astronaut):
    """The scanned-print subset is sepia (red over green over blue), faded and grainy, the same on every
    call; the over-sharpened subset adds fine detail without moving the picture."""
    from agegender.align import align_views
    from agegender.eval.stress import TRANSFORMS
    from agegender.predictor import Predictor

    det = Predictor().detect(astronaut)[0]
    crops = align_views(astronaut, det.landmarks, 112, ((0.0, "edge"),))[None]
    old = TRANSFORMS["scanned old print"](crops, 1.0)
    assert old.shape == crops.shape and old.dtype == np.uint8
    assert (old == TRANSFORMS["scanned old print"](crops, 1.0)).all()
    mean = old.reshape(-1, 3).astype(float).mean(0)
    assert mean[0] > mean[1] > mean[2]
    assert old.astype(float).std() < 0.8 * crops.astype(float).std()
    sharp = TRANSFORMS["over-sharpened"](crops, 1.0).astype(float)

    def detail(x: np.ndarray) -> float:
        return float(np.abs(np.diff(x.astype(float), axis=2)).mean())

    assert detail(sharp) > 1.3 * detail(crops)
    assert abs(sharp.mean() - crops.astype(float).mean()) < 3


@pytest.mark.parametrize("shrink", [4.5, 7.0])
def test_large_faces_are_block_averaged_not_aliased(astronaut, shrink):
    """A face shrunk many times keeps the photo's grain at full strength under bilinear sampling alone;
    block averaging first removes most of it and keeps the geometry."""
    big = np.asarray(Image.fromarray(astronaut).resize((round(512 * shrink),) * 2, Image.LANCZOS), np.float32)
    noise = np.random.default_rng(0).normal(0.0, 20.0, big.shape[:2])[..., None]
    noisy = np.clip(big + noise, 0, 255).astype(np.uint8)
    clean = big.clip(0, 255).astype(np.uint8)
    m = _similarity(0.2, 1.0 / shrink, -20.0, 10.0)  # the astronaut's 512 px at about 112 px
    grain = {aa: (warp_affine(noisy, m, 112, antialias=aa).astype(float)
                  - warp_affine(clean, m, 112, antialias=aa).astype(float)).std() for aa in (False, True)}
    assert grain[False] > 12.0  # bilinear sampling barely averages: most of the 20-level grain survives
    assert grain[True] < grain[False] / 2
    # the same picture either way: the clean crops differ only by the blur of block averaging
    a, b = (warp_affine(clean, m, 112, antialias=aa).astype(float) for aa in (False, True))
    assert np.abs(a - b).mean() < 6.0
    # the face shrunk by the same similarity from the small photo looks like the averaged crop
    small = warp_affine(astronaut, _similarity(0.2, 1.0, -20.0, 10.0), 112).astype(float)
    assert np.abs(b - small).mean() < np.abs(a - small).mean() + 0.5


def test_faces_shrunk_less_than_three_times_are_cropped_as_before(astronaut):
    """Training crops are shrunk less than three times: block averaging leaves them as they were cached."""
    m = _similarity(0.3, 1 / 2.95, 15.0, -4.0)
    np.testing.assert_array_equal(warp_affine(astronaut, m, 112, antialias=True),
                                  warp_affine(astronaut, m, 112, antialias=False))
