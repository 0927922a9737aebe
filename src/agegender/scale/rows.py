"""The output row: the columns of ``agegender predict --format csv`` plus the model's name, version and hash.

Rows are built once, as strings (exactly what ``predict --format csv`` prints, via
:func:`agegender.rows.csv_rows`), and typed only when written to Parquet or JSON Lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..rows import CSV_COLUMNS, csv_rows
from ..types import Prediction

if TYPE_CHECKING:
    import pyarrow as pa

    from ..card import ModelCard

MODEL_COLUMNS = ["model", "model_version", "model_sha256"]
#: every column of a batch output part, in order
COLUMNS = [*CSV_COLUMNS, *MODEL_COLUMNS]
_INT_COLUMNS = frozenset({"face"})
_FLOAT_COLUMNS = frozenset({"x1", "y1", "x2", "y2", "det_score", "p_female", "age", "age_low", "age_high"})
_ERROR = COLUMNS.index("error")

Row = list[str]


@dataclass(frozen=True)
class ModelId:
    """Which model produced a row (from its card)."""

    name: str
    version: str
    sha256: str

    @classmethod
    def of(cls, card: ModelCard) -> ModelId:
        return cls(card.name, card.version, card.sha256)


@dataclass(frozen=True)
class InputResult:
    """All output rows of one input (at least one row: no face and failed inputs get one)."""

    key: str
    rows: tuple[Row, ...]
    faces: int
    failed: bool

    @property
    def error(self) -> str:
        return self.rows[0][_ERROR] if self.rows else ""


def result_of(pred: Prediction, model: ModelId) -> InputResult:
    """The rows of one prediction, tagged with the model."""
    tail = [model.name, model.version, model.sha256]
    rows = tuple([*r, *tail] for r in csv_rows(pred))
    return InputResult(key=pred.source, rows=rows, faces=len(pred.faces), failed=pred.error is not None)


def failure(key: str, message: str, model: ModelId) -> InputResult:
    """The one row of an input that failed before it reached the predictor (missing, unreadable)."""
    return result_of(Prediction(source=key, width=0, height=0, faces=(), error=message), model)


def typed(row: Row) -> dict[str, Any]:
    """A string row as a dict of typed values: ints, floats, strings; ``None`` for empty fields."""
    out: dict[str, Any] = {}
    for col, v in zip(COLUMNS, row):
        if v == "":
            out[col] = None
        elif col in _INT_COLUMNS:
            out[col] = int(v)
        elif col in _FLOAT_COLUMNS:
            out[col] = float(v)
        else:
            out[col] = v
    return out


def arrow_schema() -> pa.Schema:
    import pyarrow as pa

    def kind(col: str) -> pa.DataType:
        if col in _INT_COLUMNS:
            return pa.int32()
        return pa.float64() if col in _FLOAT_COLUMNS else pa.string()

    return pa.schema([pa.field(c, kind(c)) for c in COLUMNS])


def arrow_table(rows: list[Row]) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_pylist([typed(r) for r in rows], schema=arrow_schema())
