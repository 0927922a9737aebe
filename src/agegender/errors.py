"""Typed errors. Each carries a one-line, user-facing message."""

from __future__ import annotations


class AgeGenderError(Exception):
    """Base class for every error this package raises on purpose."""


class ImageLoadError(AgeGenderError):
    """An input could not be read as an image (missing, empty, corrupt, too large...)."""


class ModelCardError(AgeGenderError):
    """A model file or its card is missing, corrupt, or of a format we do not understand."""


class DatasetError(AgeGenderError):
    """A dataset specification or annotation file cannot be used."""
