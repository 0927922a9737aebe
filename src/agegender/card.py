"""The model card: everything inference needs to know about a model file, plus its provenance.

A card is JSON next to the ONNX file. Loading checks the format version and the sha256 of the weights
and refuses, with a one-line message, anything it does not understand.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ModelCardError

CARD_FORMAT = "agegender-model-card"
CARD_VERSION = 1


#: what ``agegender export`` appends to the architecture when the graph includes the mirror pass
MIRROR_TAG = "(mirror TTA)"


@dataclass(frozen=True)
class InputSpec:
    name: str = "image"
    size: int = 112
    color: str = "RGB"  # channel order the network expects
    layout: str = "NCHW"
    scale: float = 1.0 / 255.0  # pixel values are multiplied by this, then standardised
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    #: crops noisier than this (``denoise.noise_level``) are blurred back under it before the network; the
    #: level below which most of the model's training crops lie. None: crops go in as they are
    noise_ceiling: float | None = None


@dataclass(frozen=True)
class ViewSpec:
    """A further framing of the same face (same template and size), e.g. a wide view with hair and ears."""

    margin: float
    border: str = "edge"


@dataclass(frozen=True)
class AlignmentSpec:
    template: tuple[tuple[float, float], ...]  # 5 points normalised to [0, 1] of the crop
    margin: float = 0.0
    #: fill where the crop reaches past the photo: "edge" (repeat its pixels) or "grey" (see align.BORDERS)
    border: str = "edge"
    #: further views of each face, stacked after the first on the channel axis (3 channels each): the
    #: graph's input then has 3 x (1 + len(views)) channels and each network reads its own view
    views: tuple[ViewSpec, ...] = ()

    @property
    def framings(self) -> tuple[tuple[float, str], ...]:
        """(margin, border) of every view, the first (``margin``, ``border``) included."""
        return ((self.margin, self.border),) + tuple((v.margin, v.border) for v in self.views)


@dataclass(frozen=True)
class OutputSpec:
    gender_logits: str = "gender_logits"  # (N, 2): male, female
    age_logits: str = "age_logits"  # (N, age_max - age_min + 1): one per whole year
    attention: str | None = "attention"  # (N, 1, h, w) in [0, 1], or None


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    architecture: str
    weights_file: str
    sha256: str
    input: InputSpec
    alignment: AlignmentSpec
    outputs: OutputSpec = OutputSpec()
    gender_labels: tuple[str, str] = ("male", "female")
    age_min: int = 0
    age_max: int = 100
    gender_temperature: float = 1.0
    age_temperature: float = 1.0
    interval: tuple[float, float] = (0.1, 0.9)  # quantiles of the age distribution reported as the interval
    training: dict[str, Any] = field(default_factory=dict)  # data, terms, config, command
    metrics: dict[str, Any] = field(default_factory=dict)
    limitations: tuple[str, ...] = ()
    notes: str = ""

    @property
    def mirror_in_graph(self) -> bool:
        """The exported graph already averages each face with its mirror image (``agegender export``
        without ``--no-flip`` says so in the architecture), so a second mirror pass would add nothing."""
        return MIRROR_TAG in self.architecture

    def to_json(self) -> str:
        d = asdict(self)
        d = {"format": CARD_FORMAT, "format_version": CARD_VERSION, **d}
        return json.dumps(d, indent=2)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @staticmethod
    def from_dict(d: dict[str, Any], where: str = "model card") -> ModelCard:
        if d.get("format") != CARD_FORMAT:
            raise ModelCardError(f"{where}: not an agegender model card (format={d.get('format')!r})")
        if d.get("format_version") != CARD_VERSION:
            raise ModelCardError(
                f"{where}: card format version {d.get('format_version')!r} is not supported (this agegender "
                f"understands version {CARD_VERSION}); upgrade agegender or re-export the model"
            )
        if d.get("adaptive_mirror") is not None:
            raise ModelCardError(f"{where}: adaptive_mirror is no longer supported; remove it from the card "
                                 "(the mirror pass runs for every face with tta)")
        try:
            d = {k: v for k, v in d.items() if k not in ("format", "format_version", "adaptive_mirror")}
            inp = InputSpec(**{**d.pop("input"), })
            inp = InputSpec(**{**asdict(inp), "mean": tuple(inp.mean), "std": tuple(inp.std)})
            al = d.pop("alignment")
            alignment = AlignmentSpec(template=tuple(tuple(p) for p in al["template"]), margin=float(al["margin"]),
                                      border=str(al.get("border", "edge")),
                                      views=tuple(ViewSpec(float(v["margin"]), str(v.get("border", "edge")))
                                                  for v in al.get("views", ())))
            outputs = OutputSpec(**d.pop("outputs", {}))
            card = ModelCard(
                input=inp, alignment=alignment, outputs=outputs,
                gender_labels=tuple(d.pop("gender_labels", ("male", "female"))),
                interval=tuple(d.pop("interval", (0.1, 0.9))),
                limitations=tuple(d.pop("limitations", ())),
                **d,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelCardError(f"{where}: malformed model card ({exc})") from exc
        if card.input.color not in ("RGB", "BGR") or card.input.layout != "NCHW":
            raise ModelCardError(f"{where}: unsupported input colour/layout {card.input.color}/{card.input.layout}")
        ceiling = card.input.noise_ceiling
        if ceiling is not None and (isinstance(ceiling, bool) or not isinstance(ceiling, (int, float)) or ceiling <= 0):
            raise ModelCardError(f"{where}: input.noise_ceiling must be a positive number, not {ceiling!r}")
        for margin, border in card.alignment.framings:
            if border not in ("edge", "grey"):
                raise ModelCardError(f"{where}: unknown alignment border {border!r}")
            if margin <= -0.5:
                raise ModelCardError(f"{where}: alignment margin {margin} must be greater than -0.5")
        if len(card.alignment.template) != 5:
            raise ModelCardError(f"{where}: the alignment template must have 5 points")
        if card.age_max <= card.age_min:
            raise ModelCardError(f"{where}: age_max must exceed age_min")
        return card

    @staticmethod
    def load(path: str | Path) -> ModelCard:
        p = Path(path)
        if not p.is_file():
            raise ModelCardError(f"model card not found: {p}")
        try:
            d = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelCardError(f"{p}: model card is not valid JSON ({exc.__class__.__name__})") from exc
        if not isinstance(d, dict):
            raise ModelCardError(f"{p}: model card must be a JSON object")
        return ModelCard.from_dict(d, where=str(p))


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
