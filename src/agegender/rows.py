"""A prediction as flat rows: one per face, the columns of ``agegender predict --format csv``, shared by the
command line and batch jobs. An image with no face is one row of empty fields; a failed input is one row
with its error."""

from __future__ import annotations

from collections.abc import Iterator

from .types import Prediction

CSV_COLUMNS = ["file", "face", "x1", "y1", "x2", "y2", "det_score", "gender", "p_female", "age", "age_low",
               "age_high", "age_group", "error"]


def _fmt(v: float, nd: int = 2) -> str:
    return f"{v:.{nd}f}"


def csv_rows(pred: Prediction) -> Iterator[list[str]]:
    if pred.error:
        yield [pred.source, "", "", "", "", "", "", "", "", "", "", "", "", pred.error]
        return
    if not pred.faces:
        yield [pred.source] + [""] * 13
        return
    for i, f in enumerate(pred.faces):
        x1, y1, x2, y2 = f.box
        yield [pred.source, str(i), _fmt(x1, 1), _fmt(y1, 1), _fmt(x2, 1), _fmt(y2, 1), _fmt(f.det_score, 4),
               f.gender, _fmt(f.p_female, 4), _fmt(f.age, 1), _fmt(f.age_low, 1), _fmt(f.age_high, 1),
               f.age_group, ""]
