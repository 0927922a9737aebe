"""load_image on every kind of input it accepts, EXIF orientation, and one-line errors for bad files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from agegender.errors import AgeGenderError, ImageLoadError
from agegender.io import MAX_PIXELS, load_image
from conftest import exif_bytes, huge_png_bytes, jpeg_bytes, truncated_jpeg_bytes


def _check_rgb(arr: np.ndarray, h: int, w: int) -> None:
    assert isinstance(arr, np.ndarray)
    assert arr.shape == (h, w, 3)
    assert arr.dtype == np.uint8


# -- sources --------------------------------------------------------------------------------------------


def test_load_from_path_str_and_pathlike(astronaut_path, astronaut):
    for src in (astronaut_path, str(astronaut_path)):
        arr = load_image(src)
        _check_rgb(arr, 512, 512)
        np.testing.assert_array_equal(arr, astronaut)


def test_load_from_bytes(astronaut_path, astronaut):
    data = astronaut_path.read_bytes()
    for src in (data, bytearray(data)):
        arr = load_image(src)
        _check_rgb(arr, 512, 512)
        np.testing.assert_array_equal(arr, astronaut)


def test_load_from_uint8_array(astronaut):
    arr = load_image(astronaut)
    _check_rgb(arr, 512, 512)
    np.testing.assert_array_equal(arr, astronaut)
    # non-contiguous views are fine too
    view = astronaut[::2, ::-1]
    np.testing.assert_array_equal(load_image(view), view)


def test_numpy_uint16_scaled_to_8_bit():
    a16 = np.zeros((6, 7, 3), np.uint16)
    a16[0, 0] = 65535
    a16[1, 1] = 32768
    arr = load_image(a16)
    _check_rgb(arr, 6, 7)
    assert tuple(arr[0, 0]) == (255, 255, 255)
    assert 126 <= arr[1, 1, 0] <= 129
    assert arr[2, 2, 0] == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_float_unit_range(dtype):
    a = np.zeros((5, 4, 3), dtype)
    a[0, 0] = 1.0
    a[1, 1] = 0.5
    arr = load_image(a)
    _check_rgb(arr, 5, 4)
    assert tuple(arr[0, 0]) == (255, 255, 255)
    assert 126 <= arr[1, 1, 0] <= 129
    assert arr[3, 3, 0] == 0


def test_numpy_float_0_255_range():
    a = np.full((5, 4, 3), 200.0)
    a[0, 0] = 10.0
    arr = load_image(a)
    _check_rgb(arr, 5, 4)
    assert arr[1, 1, 0] == 200 and arr[0, 0, 0] == 10


def test_numpy_greyscale_2d_and_single_channel():
    g = np.arange(30, dtype=np.uint8).reshape(5, 6) * 8
    for src in (g, g[:, :, None]):
        arr = load_image(src)
        _check_rgb(arr, 5, 6)
        for c in range(3):
            np.testing.assert_array_equal(arr[:, :, c], g)


def test_numpy_rgba_composited_on_white():
    a = np.zeros((4, 5, 4), np.uint8)
    a[..., 0] = 200  # red-ish
    a[0, 0, 3] = 255  # opaque
    a[1, 1, 3] = 0  # fully transparent -> white
    arr = load_image(a)
    _check_rgb(arr, 4, 5)
    assert tuple(arr[0, 0]) == (200, 0, 0)
    assert tuple(arr[1, 1]) == (255, 255, 255)


def test_numpy_bad_shape_is_image_load_error():
    for bad in (np.zeros((4, 5, 2), np.uint8), np.zeros((2, 3, 4, 5), np.uint8), np.zeros((0, 3, 3), np.uint8)):
        with pytest.raises(ImageLoadError) as ei:
            load_image(bad)
        assert "\n" not in str(ei.value)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "RGB"])
def test_pil_modes(astronaut, mode):
    base = Image.fromarray(np.ascontiguousarray(astronaut[:48, :64]))
    if mode == "I;16":
        grey = np.asarray(base.convert("L"), dtype=np.uint16) * 257  # full 16-bit range
        img = Image.fromarray(grey)
        assert img.mode == "I;16"
    elif mode == "P":
        img = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    else:
        img = base.convert(mode)
    assert img.mode == mode
    arr = load_image(img)
    _check_rgb(arr, 48, 64)
    # content survives: close to the greyscale / colour original on average
    ref = np.asarray(base.convert("L"), dtype=np.float64) if mode in ("L", "LA", "I;16") else np.asarray(
        base, dtype=np.float64)
    got = arr.astype(np.float64).mean(-1) if ref.ndim == 2 else arr.astype(np.float64)
    assert np.abs(got - ref).mean() < 12, mode


def test_pil_rgba_transparent_is_white():
    img = Image.new("RGBA", (6, 4), (10, 20, 30, 0))
    arr = load_image(img)
    _check_rgb(arr, 4, 6)
    assert (arr == 255).all()


def test_pil_image_over_max_pixels():
    img = Image.new("L", (100, 100))
    with pytest.raises(ImageLoadError) as ei:
        load_image(img, max_pixels=5_000)
    assert "\n" not in str(ei.value)


def test_unsupported_type():
    with pytest.raises(ImageLoadError) as ei:
        load_image(12345)  # type: ignore[arg-type]
    assert "\n" not in str(ei.value)


# -- EXIF orientation -------------------------------------------------------------------------------------


def _quadrant_image(h: int = 60, w: int = 100) -> np.ndarray:
    """Non-square, four flat quadrants of distinct colours (survive JPEG well)."""
    a = np.zeros((h, w, 3), np.uint8)
    a[: h // 2, : w // 2] = (220, 30, 30)
    a[: h // 2, w // 2 :] = (30, 220, 30)
    a[h // 2 :, : w // 2] = (30, 30, 220)
    a[h // 2 :, w // 2 :] = (230, 230, 40)
    return a


@pytest.mark.parametrize(
    "orientation, expected",
    [
        # tag 6: the viewer rotates the stored pixels 90 degrees clockwise
        (6, lambda a: np.rot90(a, k=-1)),
        # tag 8: the viewer rotates the stored pixels 90 degrees counter-clockwise
        (8, lambda a: np.rot90(a, k=1)),
    ],
)
def test_exif_orientation_honoured(tmp_path, orientation, expected):
    stored = _quadrant_image()
    path = tmp_path / f"rot{orientation}.jpg"
    path.write_bytes(jpeg_bytes(stored, quality=95, exif=exif_bytes(orientation)))
    with Image.open(path) as im:  # the tag really is there
        assert im.getexif().get(0x0112) == orientation
    want = expected(stored)
    for src in (path, path.read_bytes()):
        got = load_image(src)
        _check_rgb(got, stored.shape[1], stored.shape[0])  # transposed: (W, H, 3)
        assert np.abs(got.astype(int) - want.astype(int)).mean() < 8
    # a PIL image carrying the tag is transposed too
    with Image.open(path) as im:
        got = load_image(im)
    assert got.shape == (stored.shape[1], stored.shape[0], 3)
    assert np.abs(got.astype(int) - want.astype(int)).mean() < 8


def test_no_exif_keeps_orientation(tmp_path):
    stored = _quadrant_image()
    path = tmp_path / "plain.jpg"
    path.write_bytes(jpeg_bytes(stored, quality=95))
    got = load_image(path)
    _check_rgb(got, *stored.shape[:2])
    assert np.abs(got.astype(int) - stored.astype(int)).mean() < 8


# -- errors -----------------------------------------------------------------------------------------------


def _bad_file(tmp_path, kind: str):
    if kind == "missing":
        return tmp_path / "does_not_exist.jpg"
    if kind == "zero-byte":
        p = tmp_path / "empty.jpg"
        p.write_bytes(b"")
        return p
    if kind == "text-as-jpg":
        p = tmp_path / "notes.jpg"
        p.write_text("this is not an image\nreally not\n")
        return p
    if kind == "truncated-jpeg":
        p = tmp_path / "truncated.jpg"
        p.write_bytes(truncated_jpeg_bytes())
        return p
    if kind == "huge-png":
        p = tmp_path / "huge.png"
        p.write_bytes(huge_png_bytes())
        return p
    if kind == "huge-png-header-only":
        p = tmp_path / "huge_header.png"
        p.write_bytes(huge_png_bytes(header_only=True))
        return p
    if kind == "directory":
        p = tmp_path / "folder.jpg"
        p.mkdir()
        return p
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind, words",
    [
        ("missing", "no such file"),
        ("zero-byte", "empty"),
        ("text-as-jpg", "not a recognised image"),
        ("truncated-jpeg", "truncated"),
        ("huge-png", "exceeds the limit"),
        ("huge-png-header-only", ""),
        ("directory", "directory"),
    ],
)
def test_bad_files_raise_one_line_errors(tmp_path, kind, words):
    path = _bad_file(tmp_path, kind)
    with pytest.raises(ImageLoadError) as ei:
        load_image(path)
    msg = str(ei.value)
    assert isinstance(ei.value, AgeGenderError)
    assert "\n" not in msg and "\r" not in msg
    assert str(path) in msg  # names the file
    assert words in msg
    if kind.startswith("huge"):
        assert len(msg) < 300


@pytest.mark.parametrize("kind", ["zero-byte", "text-as-jpg", "truncated-jpeg", "huge-png"])
def test_bad_bytes_raise_one_line_errors(tmp_path, kind):
    data = _bad_file(tmp_path, kind).read_bytes()
    with pytest.raises(ImageLoadError) as ei:
        load_image(data)
    assert "\n" not in str(ei.value)


def test_huge_png_mentions_limit(tmp_path):
    with pytest.raises(ImageLoadError) as ei:
        load_image(huge_png_bytes())
    assert str(MAX_PIXELS) in str(ei.value)


def test_max_pixels_argument(astronaut_path):
    with pytest.raises(ImageLoadError) as ei:
        load_image(astronaut_path, max_pixels=512 * 512 - 1)
    assert "\n" not in str(ei.value)
    assert load_image(astronaut_path, max_pixels=512 * 512).shape == (512, 512, 3)
