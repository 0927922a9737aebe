"""Batch jobs over many photos: input lists, resumable exactly-once output parts, local and Ray engines.

A shell around :class:`agegender.Predictor` (the inference core imports nothing from here). Heavy
imports (Ray, pyarrow) happen inside the functions that need them.

>>> from agegender.scale import BatchConfig, run_batch
>>> summary = run_batch(BatchConfig(inputs=["photos/"], out_dir="out"))
"""

from __future__ import annotations

from .job import BatchConfig, BatchJobError, BatchSummary, compact, run_batch
from .parts import read_rows

__all__ = ["BatchConfig", "BatchJobError", "BatchSummary", "compact", "read_rows", "run_batch"]
