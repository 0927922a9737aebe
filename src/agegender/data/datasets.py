"""Dataset specs (adapter name + path) -> the annotation table."""

from __future__ import annotations

import logging

from ..errors import DatasetError
from .records import Record

log = logging.getLogger(__name__)

DATASETS = ("utkface", "aaf", "adience", "fairface", "imdbwiki", "csv")


def load_records(dataset: str, root: str) -> list[Record]:
    """Annotation table for a dataset spec (adapter name + root)."""
    if dataset == "utkface":
        from .utkface import load_utkface

        records, report = load_utkface(root)
    elif dataset == "aaf":
        from .aaf import load_aaf

        records, report = load_aaf(root)
    elif dataset == "adience":
        from .adience import load_adience

        records, report = load_adience(root, image_root=root)
    elif dataset == "fairface":
        from .fairface import load_fairface_csv

        records, report = load_fairface_csv(root)
    elif dataset == "imdbwiki":
        from .imdbwiki import load_imdbwiki_mat

        records, report = load_imdbwiki_mat(root)
    elif dataset == "csv":
        from .generic import load_generic_csv

        records, report = load_generic_csv(root)
    else:
        raise DatasetError(f"unknown dataset {dataset!r} (utkface, aaf, adience, fairface, imdbwiki, csv)")
    log.info("%s", report.summary())
    return records
