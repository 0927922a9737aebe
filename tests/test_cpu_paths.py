"""The CPU-saving paths change no answer: the quicker input tensor and crop padding give the same bits, and the
command line that ends without the interpreter's teardown still writes everything and exits with its code.
(The CPU they save is measured in benchmarks/cpu_profile.py, not here.)"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agegender.align import _padded, crop_shrink, estimate_similarity, template_points
from agegender.card import InputSpec
from agegender.preprocess import to_input


def _reference_input(crops: np.ndarray, spec: InputSpec) -> np.ndarray:
    """The network input written out plainly: per pixel and view, (x * scale - mean) / std, NCHW."""
    n, h, w, c = crops.shape
    x = crops.astype(np.float32).reshape(n, h, w, c // 3, 3) * np.float32(spec.scale)
    if spec.color == "BGR":
        x = x[..., ::-1]
    x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(x.reshape(n, h, w, c).transpose(0, 3, 1, 2))


@pytest.mark.parametrize("views", [1, 2, 3])
@pytest.mark.parametrize("color", ["RGB", "BGR"])
def test_input_tensor_has_the_same_bits(views, color):
    rng = np.random.default_rng(views)
    crops = rng.integers(0, 256, (5, 112, 112, 3 * views), dtype=np.uint8)
    spec = InputSpec(color=color, scale=1 / 255, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    got = to_input(crops, spec)
    want = _reference_input(crops, spec)
    assert got.dtype == np.float32 and got.flags.c_contiguous and got.shape == (5, 3 * views, 112, 112)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("border", ["edge", "grey"])
@pytest.mark.parametrize("pads", [(0, 0, 0, 0), (3, 0, 2, 0), (0, 5, 0, 7), (4, 4, 4, 4), (9, 1, 0, 12)])
def test_crop_padding_is_numpys(border, pads):
    rng = np.random.default_rng(sum(pads))
    part = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)[5:30, 7:40]  # a view, as alignment passes
    top, bottom, left, right = pads
    got = _padded(part, top, bottom, left, right, border)
    widths = ((top, bottom), (left, right), (0, 0))
    want = np.pad(part, widths, mode="edge") if border == "edge" else np.pad(part, widths, constant_values=128)
    assert got.flags.c_contiguous and np.array_equal(got, want)


def test_crop_shrink_is_the_alignment_scale():
    """The closed-form shrink (which decoded copy a face is cropped from) is the similarity's, also for mirrored
    (reflected) landmarks and wide second views."""
    rng = np.random.default_rng(0)
    framings = ((0.0, "edge"), (0.15, "grey"))
    for k in range(300):
        lm = rng.uniform(0, 500, (5, 2))
        if k % 3 == 0:
            lm[:, 0] *= -1
        want = min(1 / np.sqrt(abs(np.linalg.det(estimate_similarity(lm, template_points(112, m))[:, :2])))
                   for m, _ in framings)
        assert crop_shrink(lm, 112, framings) == pytest.approx(want, rel=1e-9)
    assert crop_shrink(np.full((5, 2), 7.0), 112, framings) == float("inf")


# -- the command line ---------------------------------------------------------------------------------------


def _agegender(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m agegender.cli ARGS`` (what the console script runs: ``main()`` on this process's arguments)."""
    return subprocess.run([sys.executable, "-m", "agegender.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=180, env=env)


def test_predict_ends_with_its_code_and_all_its_output(astronaut_path, tmp_path):
    """A finished ``predict`` ends the process without the interpreter's teardown: standard output (a pipe
    here) and the output file are complete, the error line is there and the exit code is the command's."""
    photos = [str(astronaut_path)] * 30
    ok = _agegender("predict", "--format", "csv", *photos, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    rows = list(csv.DictReader(io.StringIO(ok.stdout)))
    assert len(rows) == 30 and all(r["face"] == "0" and r["age_group"] for r in rows)
    out = tmp_path / "o.csv"
    failed = _agegender("predict", "--format", "csv", "-o", str(out), str(tmp_path / "missing.jpg"), *photos,
                        cwd=tmp_path)
    assert failed.returncode == 1
    assert "missing.jpg: no such file" in failed.stderr and "1 of 31 input(s) failed" in failed.stderr
    written = list(csv.DictReader(out.open()))
    assert len(written) == 31 and [r["face"] for r in written[1:]] == ["0"] * 30
    table = _agegender("predict", str(astronaut_path), cwd=tmp_path)
    assert table.returncode == 0 and table.stdout.count("face 0") == 1


def test_the_teardown_is_skipped_only_for_predict_from_the_command_line(astronaut_path, tmp_path):
    """In-process callers (tests, other programs) get the return code and a process that goes on."""
    code = ("import sys\nfrom agegender.cli import main\n"
            f"rc = main(['predict', '--format', 'csv', '-q', {str(astronaut_path)!r}])\n"
            "print('still here', rc)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and proc.stdout.rstrip().endswith("still here 0"), proc.stderr


@pytest.mark.parametrize(("args", "preset", "want"), [
    (["predict"], None, "1"),  # an inference command (here a usage error, after parsing): one BLAS thread
    (["predict"], "3", "3"),  # what the user chose stays
    (["evaluate"], None, None),  # research and training commands keep numpy's default
])
def test_inference_commands_ask_numpy_for_one_blas_thread(args, preset, want, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if preset is not None:
        env["OPENBLAS_NUM_THREADS"] = preset
    code = ("import os, sys\nfrom agegender.cli import main\n"
            f"main({args!r})\nprint('numpy' in sys.modules, os.environ.get('OPENBLAS_NUM_THREADS'))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=180,
                          env=env)
    assert proc.stdout.split()[-1] == str(want), proc.stdout + proc.stderr
