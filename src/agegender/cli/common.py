"""What every command shares: exit codes, usage errors and the table format of `predict`."""

from __future__ import annotations

import logging
from collections.abc import Iterator

log = logging.getLogger("agegender")

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line usage: exit code 2."""


def table_lines(pred) -> Iterator[str]:
    if pred.error:
        yield f"{pred.source}: ERROR {pred.error}"
        return
    if not pred.faces:
        yield f"{pred.source}: no face found"
        return
    for i, f in enumerate(pred.faces):
        x1, y1, x2, y2 = (round(v) for v in f.box)
        yield (f"{pred.source}  face {i}  {f.gender:<6} {f.gender_probability:>4.0%}  age {f.age:4.1f} "
               f"[{f.age_low:.0f}-{f.age_high:.0f}]  group {f.age_group:<5}  box ({x1},{y1})-({x2},{y2})")
