"""agegender: the gender and age of every face in a photo, offline, fast on a CPU.

>>> from agegender import Predictor
>>> prediction = Predictor().predict("photo.jpg")
>>> for face in prediction:
...     print(face.gender, round(face.age))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Predictor", "Prediction", "Face", "AgeGender", "Detection", "ModelCard", "load_image",
           "AgeGenderError", "ImageLoadError", "ModelCardError", "__version__"]

if TYPE_CHECKING:
    from .card import ModelCard
    from .errors import AgeGenderError, ImageLoadError, ModelCardError
    from .io import load_image
    from .predictor import Predictor
    from .types import AgeGender, Detection, Face, Prediction

_LAZY = {
    "Predictor": "predictor", "Prediction": "types", "Face": "types", "AgeGender": "types",
    "Detection": "types", "ModelCard": "card", "load_image": "io", "AgeGenderError": "errors",
    "ImageLoadError": "errors", "ModelCardError": "errors",
}


def __getattr__(name: str) -> Any:
    """Import on first use: ``import agegender`` stays cheap (no onnxruntime, no numpy work)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'agegender' has no attribute {name!r}")
