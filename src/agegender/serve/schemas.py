"""Response schemas: the library's result types (``Prediction``, ``Face``) as Pydantic models, plus the
model that produced them (name and version), errors, batches, model listings and health."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from ..annotate import Label, face_labels
from ..card import ModelCard
from ..types import Face, Prediction


class ModelRef(BaseModel):
    key: str = Field(description="the name to pass as ?model=")
    name: str = Field(description="the model card's name")
    version: str = Field(description="the model card's version")

    @classmethod
    def of(cls, key: str, card: ModelCard) -> ModelRef:
        return cls(key=key, name=card.name, version=card.version)


class LabelLineOut(BaseModel):
    text: str
    x: float = Field(description="left end of the text, image pixels")
    y: float = Field(description="baseline of the text, image pixels")
    width: float = Field(description="the text's width in the server's font: draw it stretched to this width")


class LabelOut(BaseModel):
    """Where the face's label goes: the placement the server's annotated images use (inside the image,
    never overlapping another face's label, near its face), for a page to draw over the photo."""

    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 in image pixels")
    font_size: float = Field(description="font size in image pixels")
    lines: list[LabelLineOut] = Field(description="one or two lines of text")

    @classmethod
    def of(cls, label: Label) -> LabelOut:
        return cls(box=tuple(round(v, 1) for v in label.box), font_size=label.font_size,  # type: ignore[arg-type]
                   lines=[LabelLineOut(text=ln.text, x=round(ln.x, 1), y=round(ln.y, 1), width=round(ln.width, 1))
                          for ln in label.lines])


class FaceOut(BaseModel):
    """One face, as :class:`agegender.Face`."""

    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 in image pixels")
    det_score: float = Field(description="detector confidence")
    landmarks: list[tuple[float, float]] = Field(description="eyes, nose, mouth corners; empty in aligned mode")
    gender: Literal["female", "male"] = Field(description="perceived gender")
    p_female: float = Field(description="calibrated probability of 'female'")
    gender_probability: float = Field(description="probability of the predicted gender")
    age: float = Field(description="expected apparent age in years")
    age_low: float = Field(description="10th percentile of the predicted age distribution")
    age_high: float = Field(description="90th percentile")
    age_group: str = Field(description="the Adience age group of `age`: the one holding it in whole years, "
                                       "else (an age in one of Adience's gaps, e.g. 57) the nearest")
    age_group_probs: dict[str, float] = Field(description="probability of each of the eight Adience groups")
    attention_overlay: str | None = Field(
        None, description="with explain=true: PNG data URL of the aligned face with the network's attention")
    label: LabelOut | None = Field(
        None, description="with labels=true: where this face's label goes (absent when there is no room for it)")

    @model_serializer(mode="wrap")
    def _without_absent_label(self, handler: SerializerFunctionWrapHandler):  # noqa: ANN202 - no return type: the schema stays the fields
        out = handler(self)
        if self.label is None and isinstance(out, dict):
            out.pop("label", None)  # asked for with labels=true only: other answers stay as they were
        return out

    @classmethod
    def of(cls, face: Face, attention_overlay: str | None = None) -> FaceOut:
        d = face.to_dict()
        return cls(**d, gender_probability=round(face.gender_probability, 4), attention_overlay=attention_overlay)


class PredictionOut(BaseModel):
    """All faces in one image, largest first, as :class:`agegender.Prediction`."""

    source: str = Field(description="the uploaded file's name, or 'upload' for a raw body")
    width: int
    height: int
    faces: list[FaceOut]
    model: ModelRef
    annotated_image: str | None = Field(None, description="with annotate=true: JPEG data URL, boxes and labels")

    @classmethod
    def of(cls, pred: Prediction, model: ModelRef, faces: list[FaceOut], annotated: str | None) -> PredictionOut:
        return cls(source=pred.source, width=pred.width, height=pred.height, faces=faces, model=model,
                   annotated_image=annotated)

    def with_labels(self) -> PredictionOut:
        """A copy whose faces carry their labels (:func:`agegender.annotate.face_labels`, numbered as listed)."""
        labels = face_labels(self.faces, self.width, self.height)
        faces = [f.model_copy(update={"label": None if lab is None else LabelOut.of(lab)})
                 for f, lab in zip(self.faces, labels)]
        return self.model_copy(update={"faces": faces})


class ErrorDetail(BaseModel):
    status: int = Field(description="the HTTP status")
    code: str = Field(description="the status as a word, e.g. unsupported_media_type")
    message: str = Field(description="one line for people")


class ErrorOut(BaseModel):
    error: ErrorDetail


class BatchItem(BaseModel):
    index: int = Field(description="position of the file in the request, from 0")
    filename: str
    status: int = Field(description="200, or the status this file alone would have got (413, 415, 422)")
    prediction: PredictionOut | None = None
    error: ErrorDetail | None = None


class BatchOut(BaseModel):
    model: ModelRef
    results: list[BatchItem]


class ModelSummary(BaseModel):
    key: str
    name: str
    version: str
    architecture: str
    attention: bool = Field(description="the graph outputs an attention map (explain=true)")
    default: bool


class ModelsOut(BaseModel):
    models: list[ModelSummary]


class Health(BaseModel):
    status: Literal["ok", "ready", "busy", "loading"]
    models: list[str] = []
    in_flight: int = 0
    capacity: int = 0
