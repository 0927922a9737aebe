"""Shared fixtures: public-domain sample photos from scikit-image, bad-file factories, the UTKFace folder."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

#: Where the astronaut's face is in skimage's astronaut.png (512 x 512), in pixels: x1, y1, x2, y2.
ASTRONAUT_FACE_BOX = (178.0, 56.0, 273.0, 177.0)


def _skimage_data_dir() -> Path:
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) provides the sample photos")
    return Path(skimage_data.__file__).parent


@pytest.fixture(scope="session")
def astronaut_path() -> Path:
    """Eileen Collins' NASA portrait (public domain): exactly one face."""
    p = _skimage_data_dir() / "astronaut.png"
    assert p.is_file(), p
    return p


@pytest.fixture(scope="session")
def coffee_path() -> Path:
    """A cup of coffee (public domain): no face."""
    p = _skimage_data_dir() / "coffee.png"
    assert p.is_file(), p
    return p


@pytest.fixture(scope="session")
def astronaut(astronaut_path: Path) -> np.ndarray:
    """The astronaut photo as an RGB uint8 array (read with Pillow, independently of agegender.io)."""
    with Image.open(astronaut_path) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    arr.flags.writeable = False
    return arr


@pytest.fixture(scope="session")
def coffee(coffee_path: Path) -> np.ndarray:
    with Image.open(coffee_path) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    arr.flags.writeable = False
    return arr


@pytest.fixture
def utkface_dir() -> Path:
    p = (REPO / ".." / "shared" / "data" / "utkface").resolve()
    if not p.is_dir():
        pytest.skip("../shared/data/utkface not present (UTKFace is only available to developers/CI)")
    return p


@pytest.fixture(scope="session")
def predictor():
    """One Predictor for the whole session (model and detector are loaded once)."""
    from agegender import Predictor

    return Predictor(threads=1)


# -- bad (and good) files, made on the fly ------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def huge_png_bytes(width: int = 100_000, height: int = 100_000, header_only: bool = False) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` RGB pixels; a tiny IDAT + IEND follow unless header_only."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit, colour type 2 (RGB)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
    if not header_only:
        data += png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b"")
    return data


def jpeg_bytes(arr: np.ndarray, quality: int = 90, **save_kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality, **save_kwargs)
    return buf.getvalue()


def truncated_jpeg_bytes(seed: int = 0) -> bytes:
    """A real (noisy, so large) JPEG cut to half its bytes."""
    rng = np.random.default_rng(seed)
    data = jpeg_bytes(rng.integers(0, 256, (160, 200, 3), dtype=np.uint8))
    return data[: len(data) // 2]


def exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    return exif.tobytes()


def stop_process(proc) -> None:  # noqa: ANN001 - subprocess.Popen
    """End a server the test started: SIGTERM, then SIGKILL after 15 s."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
