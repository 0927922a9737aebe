"""The shells (video, serve, explain) compose the predictor's public steps and nothing else, the core
imports nothing from them or from training, and every path answers what ``Predictor.predict`` answers.

The outputs are compared as the interfaces write them (``Face.to_dict``'s JSON, rounded to 4 decimals),
byte for byte, against the predictor's own output on the same photo: no number is written down here.
"""

from __future__ import annotations

import ast
import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SRC = Path(__file__).resolve().parents[1] / "src" / "agegender"
SHELLS = sorted((SRC / "video").glob("*.py")) + sorted((SRC / "serve").glob("*.py")) + [SRC / "explain.py"]
CORE = [SRC / f"{m}.py" for m in ("io", "align", "runtime", "predictor", "postprocess", "preprocess", "types",
                                    "card", "errors", "mirror", "denoise")] + sorted((SRC / "detect").glob("*.py"))
NOT_FOR_CORE = ("agegender.train", "agegender.cli", "agegender.serve", "agegender.scale", "agegender.video")
#: what a shell may not touch on a predictor besides private names: the runtime and its session
INSIDES = ("runtime", "session")


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str) -> set[str]:
    """Absolute names of every module ``source`` (the module named ``module``) imports, at any depth of
    its code (lazy imports in functions included)."""
    package = module.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            out.add(name)
            out |= {f"{name}.{a.name}" for a in node.names}  # ``from . import train``
    return out


def private_reads(source: str) -> list[str]:
    """``x._name`` (not on ``self``/``cls``) and ``x.runtime``/``x.session`` in ``source``, as written."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute):
            continue
        private = node.attr.startswith("_") and not node.attr.startswith("__")
        on_self = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
        if (private and not on_self) or node.attr in INSIDES:
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_the_checks_see_what_they_look_for():
    lazy = "def f():\n    from ..train.gradcam import gradcam_maps\n    from .. import cli\n"
    assert {"agegender.train.gradcam", "agegender.cli"} <= imported_modules(lazy, "agegender.video.x")
    assert "agegender.train" in imported_modules("import agegender.train", "agegender.io")
    reads = private_reads("def f(p):\n    self._ok = p._lock\n    return p.runtime.session.run(None, {})\n")
    assert len(reads) == 3 and all("self" not in r for r in reads)


@pytest.mark.parametrize("path", SHELLS, ids=lambda p: _module_name(p))
def test_shells_read_nothing_private_of_the_predictor(path):
    assert private_reads(path.read_text()) == []


@pytest.mark.parametrize("path", CORE, ids=lambda p: _module_name(p))
def test_core_imports_no_shell_nor_training(path):
    bad = [m for m in imported_modules(path.read_text(), _module_name(path)) if m.startswith(NOT_FOR_CORE)]
    assert bad == []


def test_explain_imports_nothing_from_training():
    path = SRC / "explain.py"
    assert [m for m in imported_modules(path.read_text(), "agegender.explain") if m.startswith("agegender.train")] == []


# -- the same answers on every path -----------------------------------------------------------------------


def _json(faces) -> str:
    return json.dumps([f.to_dict() for f in faces])


def _label_json(label, probs: bool = True) -> str:
    """The labelling fields of a face, a video's frame estimate or track, as ``Face.to_dict`` writes them."""
    d = {k: getattr(label, k) for k in ("gender", "p_female", "age", "age_low", "age_high", "age_group")}
    d.update({k: round(float(d[k]), 4) for k in ("p_female", "age", "age_low", "age_high")})
    if probs and hasattr(label, "age_group_probs"):
        d["age_group_probs"] = {k: round(float(v), 4) for k, v in label.age_group_probs.items()}
    return json.dumps(d)


@pytest.fixture(scope="module")
def still(predictor, astronaut):
    """What the predictor says on the astronaut: the reference every path is held to."""
    prediction = predictor.predict(np.ascontiguousarray(astronaut))
    assert len(prediction) == 1
    return prediction


def test_predict_many_answers_what_predict_answers(astronaut_path, astronaut, still):
    from agegender import Predictor

    sources = [astronaut_path, astronaut_path.read_bytes(), np.ascontiguousarray(astronaut)] * 3
    for workers in (1, 2):
        many = Predictor(threads=1, workers=workers, batch_size=2).predict_many(sources)
        assert [_json(p) for p in many] == [_json(still)] * len(sources)


def test_video_labels_are_what_predict_answers(predictor, astronaut, still):
    """On a still video, each frame's estimate and its track's label are the photo's prediction."""
    from agegender.video import VideoAnalyzer

    analyzer = VideoAnalyzer(predictor)
    frames = list(analyzer.analyze([np.ascontiguousarray(astronaut)] * 3, fps=10.0))
    face = still[0]
    for frame in frames:
        (tracked,) = frame.faces
        assert tracked.box == face.box and tracked.det_score == pytest.approx(face.det_score, abs=1e-12)
        assert _label_json(tracked.frame_estimate) == _label_json(face)
        assert _label_json(tracked) == _label_json(face, probs=False)  # the track's label, from 1-3 frames
    (track,) = analyzer.tracks()
    assert track.frames_seen == 3 and _label_json(track) == _label_json(face)


def test_serve_engine_answers_what_predict_answers(astronaut_path, astronaut, still):
    from agegender import Predictor
    from agegender.annotate import overlay_heatmap
    from agegender.serve.engine import LoadedModel, PredictOptions, predict_upload
    from agegender.serve.settings import ServeSettings
    from agegender.serve.uploads import Upload

    model = LoadedModel("default", Predictor(threads=1, workers=1))
    assert model.has_attention
    out = predict_upload(model, Upload("file", "astronaut.png", astronaut_path.read_bytes()),
                         PredictOptions(explain=True), ServeSettings.load({}), source="upload")
    (face,) = out.faces
    got = face.model_dump()
    overlay = got.pop("attention_overlay")
    assert got.pop("gender_probability") == round(still[0].gender_probability, 4)
    assert json.dumps(got) == json.dumps(still[0].to_dict())
    # the overlay is drawn on the crop the model saw: the one alignment makes from the detection
    p = model.predictor
    crop = p.align(np.ascontiguousarray(astronaut), p.detect(np.ascontiguousarray(astronaut))[0])
    want = overlay_heatmap(crop, still[0].attention)
    got_img = Image.open(io.BytesIO(base64.b64decode(overlay.split(",", 1)[1]))).convert("RGB")
    assert np.array_equal(np.asarray(got_img), np.asarray(want.resize(got_img.size, Image.BICUBIC)))


# -- the steps -----------------------------------------------------------------------------------------------


def test_steps_compose_to_predict_crops(predictor, astronaut):
    img = np.ascontiguousarray(astronaut)
    crops = np.stack([predictor.align(img, d) for d in predictor.detect(img)] * 11)  # two model calls and more
    results, attention = predictor.predict_crops(crops)
    raw = predictor.run_network(crops)
    assert raw.gender_logits.shape == (11, 2) and raw.attention is not None
    assert np.array_equal(raw.attention[:, 0], attention)
    decoded = predictor.decode(*predictor.calibrate(raw))
    for r, d in zip(results, decoded):
        assert (d.gender, d.age_group) == (r.gender, r.age_group)
        assert d.p_female == pytest.approx(r.p_female, abs=1e-9) and d.age == pytest.approx(r.age, abs=1e-9)
    g, a = predictor.calibrate(raw)
    assert np.allclose(np.exp(g).sum(1), 1) and np.allclose(np.exp(a).sum(1), 1)
    assert predictor.predict_crops(crops[:0]) == ([], None)
    assert predictor.run_network(crops[:0]).age_logits.shape == (0, a.shape[1])


def test_crop_of_a_predicted_face_is_the_crop_the_model_saw(predictor, astronaut, still):
    img = np.ascontiguousarray(astronaut)
    crop = predictor.crop_of(img, still[0])
    assert np.array_equal(crop, predictor.align(img, predictor.detect(img)[0]))
    (aligned,) = predictor.predict(crop, aligned=True)
    assert aligned.landmarks == () and np.array_equal(predictor.crop_of(crop, aligned), predictor.frame_whole(crop))


def test_weaker_threshold_finds_more_and_keeps_the_limit(astronaut):
    from agegender import Predictor

    img = np.ascontiguousarray(astronaut)
    strict = Predictor(threads=1, score_threshold=0.99999)  # above the astronaut's confidence
    assert strict.detect(img) == [] and len(strict.detect(img, score_threshold=0.5)) == 1
    assert strict.detector_at(0.5) is strict.detector_at(0.5) and strict.detector_at(0.5) is not strict.detector
    two = np.ascontiguousarray(np.hstack([astronaut, astronaut]))
    one = Predictor(threads=1, max_faces=1)
    assert len(one.detect(two)) == 1 and len(one.detect(two, score_threshold=0.3)) == 1
    given = Predictor(threads=1, detector=one.detector)
    assert given.detector_at(0.3) is one.detector  # a detector given to the predictor is used as it is


def test_track_evidence_outweighs_a_few_contrary_frames():
    """Confident, large frames saying one thing are not overturned by a few small, unsure frames."""
    from agegender import Predictor
    from agegender.video.smoothing import TrackEvidence

    predictor = Predictor(threads=1)
    card = predictor.card
    years = np.arange(card.age_min, card.age_max + 1)
    ev = TrackEvidence()

    def frame(p_female: float, age: float) -> tuple[np.ndarray, np.ndarray]:
        g = np.log([1 - p_female, p_female] if card.gender_labels[0] == "male" else [p_female, 1 - p_female])
        a = -0.5 * ((years - age) / 4.0) ** 2
        return g, a - np.log(np.exp(a).sum())

    labels = []
    for k in range(30):
        contrary = k % 5 == 4
        g, a = frame(0.35 if contrary else 0.8, 50.0 if contrary else 30.0)
        ev.add(g, a, weight=0.2 if contrary else 1.0)
        labels.append(predictor.decode(*(x[None] for x in ev.pooled()))[0])
    assert {lab.gender for lab in labels} == {"female"}
    assert all(29 <= lab.age <= 34 for lab in labels), [round(lab.age, 1) for lab in labels]
    # the pooled interval stays about one frame's width (frames of one face are not independent)
    assert labels[-1].age_high - labels[-1].age_low > 5.0
    one = TrackEvidence()
    one.add(*frame(0.8, 30.0), weight=0.37)  # a single frame's pooled label is that frame's label
    pooled = predictor.decode(*(x[None] for x in one.pooled()))[0]
    alone = predictor.decode(*(x[None] for x in frame(0.8, 30.0)))[0]
    assert _label_json(pooled) == _label_json(alone)
