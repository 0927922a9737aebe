"""Research levers: optional changes to what training shows the network, one module each (``base`` says
how a lever plugs into the loop). A config sets them under ``levers:``, e.g. ``levers: {reencode: {p: 0.3}}``.

* ``consistency``: a crop and its re-saved copy in one batch, taught the same answer;
* ``context_mask``: wide crops shown within a tight photo's window, so grey fill does not name the source;
* ``hair_dropout``: bands along the sides greyed out (hair cut away or covered);
* ``reencode``: crops saved again as users do (JPEG, WebP, CMYK, grey, rescale);
* ``unjudgeable``: crops made unreadable and taught a 50 % gender;
* ``domain_aug``: photo-domain effects (old prints, casts, low light, blur, small faces, occluders, heavy JPEG);
* ``old_print``: scanned old prints.
"""

from . import consistency, context_mask, domain_aug, hair_dropout, old_print, reencode, unjudgeable  # noqa: F401 - registers them
from .base import REGISTRY, Batch, Lever, LeverConfig, build_levers, lever_classes, needs_windows, register

__all__ = ["REGISTRY", "Batch", "Lever", "LeverConfig", "build_levers", "lever_classes", "needs_windows", "register"]
