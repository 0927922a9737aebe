"""Settings of the web service: defaults, ``AGEGENDER_*`` environment variables, then command-line flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from ..io import MAX_PIXELS

#: field -> environment variable
ENV_VARS: dict[str, str] = {
    "host": "AGEGENDER_HOST",
    "port": "AGEGENDER_PORT",
    "workers": "AGEGENDER_WORKERS",
    "queue": "AGEGENDER_QUEUE",
    "models": "AGEGENDER_MODEL",
    "threads": "AGEGENDER_THREADS",
    "max_upload_mb": "AGEGENDER_MAX_UPLOAD_MB",
    "max_request_mb": "AGEGENDER_MAX_REQUEST_MB",
    "max_pixels": "AGEGENDER_MAX_PIXELS",
    "max_faces": "AGEGENDER_MAX_FACES",
    "max_batch_files": "AGEGENDER_MAX_BATCH_FILES",
    "timeout_s": "AGEGENDER_TIMEOUT",
    "api_key": "AGEGENDER_API_KEY",
    "cors_origins": "AGEGENDER_CORS_ORIGINS",
}
_LISTS = ("models", "cors_origins")


def _default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class SettingsError(ValueError):
    """A setting (flag or environment variable) has a bad value; the message is one line."""


class ServeSettings(BaseModel):
    """Everything the service can be told. Immutable; build with :meth:`load`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field("127.0.0.1", description="address to bind (127.0.0.1: this machine only)")
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(default_factory=_default_workers, ge=1, le=64,
                         description="inference worker threads (requests computed at once)")
    queue: int = Field(32, ge=0, le=10_000, description="requests allowed to wait for a worker; beyond: 503")
    models: tuple[str, ...] = Field(("default",), min_length=1,
                                    description="models to load (the first is the default): shipped names or cards")
    threads: int = Field(1, ge=0, le=64, description="ONNX Runtime threads per inference call (0: automatic)")
    max_upload_mb: float = Field(40.0, gt=0, le=1024,
                                 description="largest accepted image file, in MiB (64 MP phone photos: up to about 30)")
    max_request_mb: float = Field(50.0, gt=0, le=8192,
                                  description="largest request body (a whole batch), in MiB")
    max_pixels: int = Field(100_000_000, ge=1, le=MAX_PIXELS,
                            description="largest accepted image, in pixels (phone photos reach 64 MP and more); "
                                        "a decompression bomb claims far more and is refused (413)")
    max_faces: int = Field(50, ge=1, le=1000, description="most faces reported per image (largest first)")
    max_batch_files: int = Field(16, ge=1, le=256, description="most files in one batch request")
    timeout_s: float = Field(30.0, gt=0, le=3600, description="per-request time limit (queue wait included)")
    api_key: SecretStr | None = Field(None, description="if set, /v1/* needs 'Authorization: Bearer <key>'")
    cors_origins: tuple[str, ...] = Field((), description="origins allowed cross-site (none: CORS off)")

    @field_validator("models", "cors_origins", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return tuple(s.strip() for s in v.split(",") if s.strip())
        return v

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, v: Any) -> Any:
        return None if v == "" else v

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_request_bytes(self) -> int:
        return int(self.max_request_mb * 1024 * 1024)

    @property
    def capacity(self) -> int:
        """Requests admitted at once (computing + waiting)."""
        return self.workers + self.queue

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServeSettings:
        """Defaults, then ``AGEGENDER_*`` variables of ``env`` (default ``os.environ``), then ``overrides``
        whose value is not None. Raises :class:`SettingsError` with a one-line message."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        source: dict[str, str] = {}
        for field, var in ENV_VARS.items():
            if var in env:
                values[field] = env[var]
                source[field] = var
        for field, value in overrides.items():
            if value is not None:
                values[field] = value
                source[field] = f"--{field.replace('_', '-')}"
        try:
            return cls(**values)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else "?"
            where = source.get(field, field)
            got = "" if field == "api_key" else f" (got {err.get('input')!r})"
            raise SettingsError(f"{where}: {err['msg']}{got}") from None
