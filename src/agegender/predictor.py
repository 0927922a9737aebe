"""The pipeline: image -> faces (detector) -> aligned crops -> ONNX model -> typed results.

Each stage is a public method of :class:`Predictor`, so that the shells (video, serve, explain) compose
them instead of reaching inside: :meth:`Predictor.detect` (largest faces first), :meth:`Predictor.align` /
:meth:`Predictor.frame_whole` / :meth:`Predictor.crop_of`, :meth:`Predictor.run_network` (raw scores and
attention maps), :meth:`Predictor.calibrate` (calibrated log-probabilities), :meth:`Predictor.decode`
(typed results), and :meth:`Predictor.predict_crops`, the last three in one.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .align import align_views, center_crop_views, crop_shrink
from .card import ModelCard
from .detect.base import Detector
from .errors import AgeGenderError
from .io import ImageInput, load_image, load_image_reduced
from .mirror import run_model
from .postprocess import decode as decode_scores
from .postprocess import log_softmax
from .preprocess import to_input
from .runtime import ModelRuntime, RawOutputs, resolve_card_path
from .types import AgeGender, Detection, Face, Prediction

log = logging.getLogger(__name__)

#: faces per ONNX Runtime call: small batches keep a MobileNetV2's activations in the CPU caches (on 2
#: cores, 6.7 ms per face in batches of 8 against 10.5 in batches of 64 for the default's two networks;
#: docs/speed.md)
MODEL_CALL_FACES = 8


#: a face is cropped from a reduced copy of its photo (a large JPEG decoded in draft mode: 1/2, 1/4 or 1/8 in
#: the DCT) only when the copy keeps at least this many of its pixels per crop pixel, so that the crop's
#: bilinear step still shrinks it 1.5 to 3 times, as alignment does the training crops (``align.warp_affine``)
REDUCED_MIN_SHRINK = 1.5


@dataclass
class _Prepared:
    name: str
    width: int
    height: int
    detections: list[Detection]
    crops: list[np.ndarray]
    error: AgeGenderError | None


def _split(items: list[_Prepared], parts: int) -> list[list[_Prepared]]:
    """``items`` in at most ``parts`` consecutive runs with about as many faces each (none empty)."""
    total = sum(max(1, len(p.crops)) for p in items)
    out: list[list[_Prepared]] = [[]]
    done = 0
    for p in items:
        if out[-1] and len(out) < parts and done >= total * len(out) / parts:
            out.append([])
        out[-1].append(p)
        done += max(1, len(p.crops))
    return out


def _quietly(fn: Callable[[], object]) -> None:
    """Run ``fn``; a failure is left for the first real call to report."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001
        log.debug("warm-up failed: %s", exc)


def _name(source: ImageInput, index: int) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return f"<{type(source).__name__} #{index}>"


def _face(d: Detection, r: AgeGender, attention: np.ndarray | None) -> Face:
    """A detected face and what the model says about it, as one :class:`Face` (no landmarks in aligned mode)."""
    lms = tuple((float(x), float(y)) for x, y in d.landmarks) if np.isfinite(d.landmarks).all() else ()
    x1, y1, x2, y2 = (float(v) for v in d.box)
    return Face(box=(x1, y1, x2, y2), det_score=float(d.score), landmarks=lms,
                gender=r.gender, p_female=r.p_female, age=r.age, age_low=r.age_low, age_high=r.age_high,
                age_group=r.age_group, age_group_probs=r.age_group_probs, attention=attention)


class Predictor:
    """Gender and age of every face in an image.

    >>> from agegender import Predictor
    >>> for face in Predictor().predict("photo.jpg"):
    ...     print(face)

    Args:
        model: a model card (.json), an ONNX file with its card beside it, or a folder; ``None`` uses
            the model shipped in the package. Loaded lazily on first use.
        detector: any object with ``detect(rgb) -> list[Detection]``, used as it is; default RetinaFace,
            built from the settings below (and at other thresholds by :meth:`detector_at`).
        threads: ONNX Runtime threads for the detector and the model (0: ONNX Runtime decides).
        max_faces: keep at most this many faces per image (largest first).
        min_face_size: ignore faces smaller than this many pixels.
        score_threshold: detector confidence threshold.
        batch_size: faces gathered per step of :meth:`predict_many`; each model call takes at most
            ``MODEL_CALL_FACES`` of them.
        tta: also run each face mirrored and average the two predictions (mirror test-time
            augmentation): a little more accurate, twice the model time. A no-op for models whose
            graph already has the mirror pass (``card.mirror_in_graph``).
        workers: threads loading, detecting and aligning images in parallel in :meth:`predict_many`
            (default: ``threads``, or every core when ``threads`` is 0).
    """

    def __init__(
        self,
        model: str | Path | None = None,
        detector: Detector | None = None,
        threads: int = 0,
        max_faces: int | None = None,
        min_face_size: float = 12.0,
        score_threshold: float = 0.7,
        batch_size: int = 64,
        workers: int | None = None,
        tta: bool = False,
    ) -> None:
        self._model_spec = model
        self._detector = detector
        self._detector_given = detector is not None
        self.threads = threads
        self.max_faces = max_faces
        self.min_face_size = min_face_size
        self.score_threshold = score_threshold
        self.batch_size = batch_size
        self.tta = tta
        #: threads that load, detect and align images in parallel (default: ``threads`` or all cores)
        self.workers = workers if workers is not None else (threads or os.cpu_count() or 1)
        self._runtime: ModelRuntime | None = None
        self._card_only: ModelCard | None = None
        self._unit_card: ModelCard | None = None
        self._detectors: dict[float, Detector] = {}  # detectors at other thresholds (detector_at)
        self._lock = threading.Lock()

    # -- lazily built stages -------------------------------------------------------------
    @property
    def runtime(self) -> ModelRuntime:
        if self._runtime is None:
            with self._lock:
                if self._runtime is None:
                    self._runtime = ModelRuntime(self._model_spec, threads=self.model_threads)
        return self._runtime

    @property
    def _light_card(self) -> ModelCard:
        """The card, for alignment and decoding: read from its file without waiting for the model's session."""
        if self._runtime is not None:
            return self._runtime.card
        if self._card_only is None:
            self._card_only = ModelCard.load(resolve_card_path(self._model_spec))
        return self._card_only

    @property
    def model_threads(self) -> int:
        """ONNX Runtime threads per model call: ``threads``; when that is 0 (automatic) and several
        ``workers`` share the cores, 1, since the pipeline then runs several calls at once and a single
        thread per call does the most work per core (``docs/speed.md``)."""
        return self.threads if self.threads or self.workers <= 1 else 1

    @property
    def card(self) -> ModelCard:
        return self.runtime.card

    @property
    def has_attention(self) -> bool:
        """Whether the model's graph gives attention maps (loads the model)."""
        return self.runtime.has_attention

    @property
    def detector(self) -> Detector:
        if self._detector is None:
            self._detector = self._new_detector(self.score_threshold, self.max_faces,
                                                1 if self.workers > 1 else self.threads)
        return self._detector

    def _new_detector(self, score_threshold: float, max_faces: int | None, threads: int) -> Detector:
        from .detect.retinaface import RetinaFaceDetector

        return RetinaFaceDetector(score_threshold=score_threshold, min_face_size=self.min_face_size,
                                  max_faces=max_faces, threads=threads)

    def detector_at(self, score_threshold: float) -> Detector:
        """A detector for one image after another (a video's frames) that keeps every face down to
        ``score_threshold`` (a tracker extends its tracks with weak detections): the default detector's
        settings with that threshold, no face limit and ``threads`` threads. A detector given to the
        predictor is returned as it is."""
        if self._detector_given:
            return self.detector
        with self._lock:
            if score_threshold not in self._detectors:
                self._detectors[score_threshold] = self._new_detector(score_threshold, None, self.threads)
            return self._detectors[score_threshold]

    def load(self, detector: bool = True) -> None:
        """Load (and verify) the model now, and with ``detector`` the detector's session at the same time on
        another thread; otherwise both load on first use. Raises :class:`ModelCardError` for a bad model."""
        warm = None
        if detector and hasattr(self.detector, "load"):
            warm = threading.Thread(target=_quietly, args=(self.detector.load,), daemon=True)  # type: ignore[attr-defined]
            warm.start()
        try:
            self.card  # noqa: B018
        finally:
            if warm is not None:
                warm.join()

    # -- stages ------------------------------------------------------------------------------
    def detect(self, image: np.ndarray, score_threshold: float | None = None) -> list[Detection]:
        """Faces in an RGB uint8 image, largest first, at most ``max_faces``; ``score_threshold``: down to
        that confidence instead of the predictor's own (:meth:`detector_at`)."""
        detector = self.detector if score_threshold is None else self.detector_at(score_threshold)
        return self._largest(detector.detect(image))

    def _largest(self, detections: Iterable[Detection]) -> list[Detection]:
        dets = sorted(detections, key=lambda d: d.area, reverse=True)
        return dets[: self.max_faces] if self.max_faces is not None else dets

    def align(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        """The face's crop, framed as the model card says (template, margin, size); a model with several
        views (``card.alignment.views``) gets them all, stacked on the channel axis (the first view is
        ``crop[..., :3]``)."""
        c = self._light_card
        return align_views(image, detection.landmarks, c.input.size, c.alignment.framings, c.alignment.template)

    def frame_whole(self, image: np.ndarray) -> np.ndarray:
        """An image that is already one face crop (``aligned=True``), framed as the card says."""
        c = self._light_card
        return center_crop_views(image, c.input.size, c.alignment.framings)

    def crop_of(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The crop the model saw for ``face``, a face that :meth:`predict` found in ``image`` (the whole
        image, framed, for a face of ``aligned=True``, which has no landmarks)."""
        if not face.landmarks:
            return self.frame_whole(image)
        return self.align(image, Detection(box=face.box, score=face.det_score,
                                           landmarks=np.asarray(face.landmarks, np.float32)))

    def run_network(self, crops: np.ndarray) -> RawOutputs:
        """Aligned uint8 crops (N, S, S, 3 x views) through the network, ``MODEL_CALL_FACES`` at a time, each
        also mirrored with ``tta``: the raw, uncalibrated scores (gender (N, 2) in the card's label order,
        age (N, years); logits, or log-probabilities where mirrored) and attention maps (N, 1, h, w) or None."""
        card = self.card
        if len(crops) == 0:
            years = card.age_max - card.age_min + 1
            return RawOutputs(np.zeros((0, 2), np.float32), np.zeros((0, years), np.float32), None)
        step = max(1, min(self.batch_size, MODEL_CALL_FACES))
        parts = [run_model(self.runtime, to_input(crops[i : i + step], card.input), self.tta)
                 for i in range(0, len(crops), step)]
        atts = [p.attention for p in parts if p.attention is not None]
        return RawOutputs(np.concatenate([p.gender_logits for p in parts]),
                          np.concatenate([p.age_logits for p in parts]), np.concatenate(atts) if atts else None)

    def calibrate(self, raw: RawOutputs) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated log-probabilities (float64) of :meth:`run_network`'s scores, gender and age: each
        divided by the card's temperature and normalised."""
        c = self._light_card
        return log_softmax(raw.gender_logits, c.gender_temperature), log_softmax(raw.age_logits, c.age_temperature)

    def decode(self, gender_logp: np.ndarray, age_logp: np.ndarray) -> list[AgeGender]:
        """Typed results from calibrated log-probabilities: :meth:`calibrate`'s, or a pool of them (a video
        track's frames). Gives :meth:`predict_crops`'s results to the last bits of rounding."""
        if self._unit_card is None:  # the card's decoding, at unit temperature: calibration is done
            self._unit_card = replace(self._light_card, gender_temperature=1.0, age_temperature=1.0)
        return decode_scores(gender_logp, age_logp, self._unit_card)

    def predict_crops(self, crops: np.ndarray) -> tuple[list[AgeGender], np.ndarray | None]:
        """Aligned uint8 crops (N, S, S, 3 x views) -> results and attention maps (N, h, w) or None:
        :meth:`run_network`, then the card's calibration and decoding."""
        if len(crops) == 0:
            return [], None
        raw = self.run_network(crops)
        results = decode_scores(raw.gender_logits, raw.age_logits, self.card)
        return results, (raw.attention[:, 0] if raw.attention is not None else None)

    # -- public API ------------------------------------------------------------------------
    def predict(self, image: ImageInput, aligned: bool = False) -> Prediction:
        """All faces in one image, largest first. Raises :class:`AgeGenderError` on unreadable input.

        ``aligned=True`` treats the image as one already-cropped face (no detection).
        """
        pred = self.predict_many([image], aligned=aligned, on_error="raise")[0]
        return pred

    def predict_many(
        self,
        images: Iterable[ImageInput],
        aligned: bool = False,
        on_error: str = "record",
    ) -> list[Prediction]:
        """Predict for many images, batching their faces into few model calls.

        ``on_error="record"`` returns a :class:`Prediction` with ``error`` set for inputs that fail
        (the others are still processed); ``"raise"`` raises the first error.
        """
        return list(self.iter_predict(images, aligned=aligned, on_error=on_error))

    def _prepare(self, k: int, source: ImageInput, aligned: bool) -> _Prepared:
        """Load, detect and align one input (runs in worker threads)."""
        name = _name(source, k)
        try:
            if not aligned:
                return self._prepare_photo(name, source)
            img = load_image(source, name=name)
            h, w = img.shape[:2]
            det = Detection(box=(0.0, 0.0, float(w), float(h)), score=1.0,
                            landmarks=np.full((5, 2), np.nan, np.float32))
            crop = self.frame_whole(img)
            return _Prepared(name, w, h, [det], [crop], None)
        except AgeGenderError as exc:
            return _Prepared(name, 0, 0, [], [], exc)

    def _prepare_photo(self, name: str, source: ImageInput) -> _Prepared:
        """Decode (a large JPEG at reduced size), detect, then align on the smallest decoded copy that keeps
        ``REDUCED_MIN_SHRINK`` of its pixels per crop pixel (decoding a larger one only when none does)."""
        detector = self.detector
        side = getattr(detector, "first_side", None) or getattr(detector, "max_side", None)
        if not (hasattr(detector, "detect_scaled") and (callable(side) or (isinstance(side, int) and side > 0))):
            img = load_image(source, name=name)
            dets = self.detect(img)
            return _Prepared(name, img.shape[1], img.shape[0], dets, [self.align(img, d) for d in dets], None)
        small, scale, (w, h) = load_image_reduced(source, side, name=name)
        copies = {scale: small}  # every decoded copy, by its scale against the photo

        def reload(min_side: int) -> tuple[np.ndarray, float]:
            img, s, _ = load_image_reduced(source, min_side, name=name)
            copies[s] = img
            return img, s

        if hasattr(detector, "first_side"):
            found = detector.detect_scaled(small, scale, reload=reload)  # type: ignore[attr-defined]
        else:
            found = detector.detect_scaled(small, scale)  # type: ignore[attr-defined]
        dets = self._largest(found)
        if not dets:  # no face: no other copy is needed
            return _Prepared(name, w, h, dets, [], None)
        img, s = self._copy_for_alignment(dets, copies, max(w, h), reload)
        crops = [self.align(img, d if s == 1.0 else d.scaled(s)) for d in dets]
        return _Prepared(name, w, h, dets, crops, None)

    def _copy_for_alignment(self, dets: list[Detection], copies: dict[float, np.ndarray], longer: int,
                            reload: Callable[[int], tuple[np.ndarray, float]]) -> tuple[np.ndarray, float]:
        """The smallest decoded copy (and its scale) from which every face's crop shrinks it at least
        ``REDUCED_MIN_SHRINK`` times; a new copy, as small as that allows, when none of ``copies`` does."""
        if len(copies) == 1 and 1.0 in copies:  # decoded at full size only: nothing to choose
            return copies[1.0], 1.0
        c = self._light_card
        shrink = min(crop_shrink(d.landmarks, c.input.size, c.alignment.framings, c.alignment.template)
                     for d in dets)
        need = min(1.0, REDUCED_MIN_SHRINK / shrink) if shrink > 0 else 1.0
        fits = [s for s in copies if s >= need]
        if fits:
            return copies[min(fits)], min(fits)
        return reload(math.ceil(need * longer))

    def iter_predict(
        self,
        images: Iterable[ImageInput],
        aligned: bool = False,
        on_error: str = "record",
        chunk: int | None = None,
    ) -> Iterator[Prediction]:
        """Like :meth:`predict_many` but yields results, in input order, as chunks of images complete.

        Loading, detection, alignment and the model calls of whole chunks all run as jobs on one pool of
        ``workers`` threads (ONNX Runtime and Pillow release the GIL), so every core stays busy: while
        one chunk's faces go through the model, the next images are being decoded and searched.
        """
        if on_error not in ("record", "raise"):
            raise ValueError("on_error must be 'record' or 'raise'")
        chunk = chunk or self.batch_size
        jobs = enumerate(images)
        if self.workers <= 1:
            self.load(detector=not aligned)
            yield from self._chunks((self._prepare(k, src, aligned) for k, src in jobs), chunk, on_error,
                                    lambda pending, crops, last: iter(list(self._finish(pending, crops))))
            return
        window = 4 * self.workers + chunk
        self._light_card  # the card must be readable before any image is touched  # noqa: B018
        with ThreadPoolExecutor(self.workers, thread_name_prefix="agegender") as pool:
            # start-up overlaps the work: the model's session loads on one thread while the others decode
            # and search the first images (the detector's session loads with the first of them)
            model_ready = pool.submit(lambda: self.runtime) if self._runtime is None else None
            preps: deque[Future[_Prepared]] = deque()
            outs: deque[Future[list[Prediction]]] = deque()

            def prepared() -> Iterator[_Prepared]:
                more = True
                while True:
                    while more and len(preps) < window:
                        job = next(jobs, None)
                        if job is None:
                            more = False
                            break
                        preps.append(pool.submit(self._prepare, job[0], job[1], aligned))
                    if not preps:
                        return
                    yield preps.popleft().result()

            def submit(pending: list[_Prepared], crops: list[np.ndarray], last: bool) -> Iterator[Prediction]:
                if model_ready is not None:
                    model_ready.result()  # a model that cannot load fails here, before any result
                # the last chunk is split over the workers, so that no core idles at the end
                parts = _split(pending, self.workers) if last else [pending]
                for part in parts:
                    part_crops = [c for prep in part for c in prep.crops] if last else crops
                    outs.append(pool.submit(lambda p=part, c=part_crops: list(self._finish(p, c))))
                while outs and (outs[0].done() or len(outs) > 2 + len(parts)):
                    yield from outs.popleft().result()

            try:
                yield from self._chunks(prepared(), chunk, on_error, submit)
                while outs:
                    yield from outs.popleft().result()
            finally:
                for f in list(preps) + list(outs):
                    f.cancel()

    def _chunks(self, prepared: Iterable[_Prepared], chunk: int, on_error: str,
                finish: Callable[[list[_Prepared], list[np.ndarray], bool], Iterator[Prediction]]
                ) -> Iterator[Prediction]:
        """Group prepared images into chunks of about ``chunk`` faces (or images) and hand each to ``finish``."""
        pending: list[_Prepared] = []
        crops: list[np.ndarray] = []
        for prep in prepared:
            if prep.error is not None:
                if on_error == "raise":
                    raise prep.error
                log.warning("%s", prep.error)
            pending.append(prep)
            crops += prep.crops
            if len(crops) >= chunk or len(pending) >= chunk:
                yield from finish(pending, crops, False)
                pending, crops = [], []
        if pending:
            yield from finish(pending, crops, True)

    def _finish(self, pending: list[_Prepared], crops: list[np.ndarray]) -> Iterator[Prediction]:
        arr = np.stack(crops) if crops else np.zeros((0, 1, 1, 3), np.uint8)
        results, atts = self.predict_crops(arr)
        j = 0
        for prep in pending:
            faces = []
            for d in prep.detections:
                faces.append(_face(d, results[j], atts[j] if atts is not None else None))
                j += 1
            yield Prediction(source=prep.name, width=prep.width, height=prep.height, faces=tuple(faces),
                             error=str(prep.error) if prep.error else None)
