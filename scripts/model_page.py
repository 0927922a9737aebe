"""Write docs/models.md from the shipped model cards (src/agegender/assets/*.json), so the page and the
cards never disagree.

    python scripts/model_page.py [--out docs/models.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "src" / "agegender" / "assets"
DETECTOR_CARD = "retinaface"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f} %"


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def full_pipeline_table(card: dict) -> list[str]:
    rows = ["| set (full pipeline) | faces found | gender | age MAE | 9-bin exact / 1-off | gender ECE | worst group |",
            "|---|---|---|---|---|---|---|"]
    for label, m in card.get("metrics", {}).get("full_pipeline", {}).items():
        if not isinstance(m, dict) or "gender_accuracy" not in m:
            continue
        worst = m.get("worst_group") or {}
        bins = (f"{_pct(m.get('age_bin9_accuracy'))} / {_pct(m.get('age_bin9_one_off'))}"
                if "age_bin9_accuracy" in m else "–")
        rows.append(f"| {label} | {m.get('faces_found', m.get('n', '–'))} of {m.get('images', m.get('n', '–'))} | "
                    f"{_pct(m.get('gender_accuracy'))} | {_num(m.get('age_mae'))} | {bins} | "
                    f"{m.get('gender_ece', '–')} | "
                    f"{worst.get('group', '–')} {_pct(worst.get('gender_accuracy')) if worst else ''} |")
    return rows


def group_table(card: dict) -> list[str]:
    """FairFace test part (aligned crops, as export scored it): gender and 9-bin accuracy per group."""
    ff = card.get("metrics", {}).get("by_source", {}).get("fairface", {})
    groups = {k: v for k, v in ff.get("by_group", {}).items() if k.startswith("race ") and " x " in k}
    if not groups:
        return []
    rows = ["", "FairFace test part (1,963 faces, aligned crops from the cache), per group:", "",
            "| group | n | gender | 9-bin exact |", "|---|---|---|---|"]
    for k, v in groups.items():
        rows.append(f"| {k[5:]} | {v['n']} | {_pct(v.get('gender_accuracy'))} | {_pct(v.get('age_bin_accuracy'))} |")
    return rows


def section(name: str, card: dict) -> list[str]:
    training = card.get("training", {})
    configs = training.get("configs", [])
    lines = [f"## `{name}` — {card['name']} {card['version']}", "",
             f"- **Networks**: {card['architecture']} ({len(configs)}; "
             f"{', '.join(c['name'] for c in configs)}), input {card['input']['size']} px; "
             f"views: tight crop" + "".join(f", margin {v['margin']} ({v['border']})"
                                             for v in card['alignment'].get('views', [])) + ".",
             f"- **Training data**: {training.get('data', '–')}.",
             f"- **Started from**: {', '.join(training.get('initialised_from', [])) or 'ImageNet'}.",
             f"- **Terms**: {training.get('terms', '–')}",
             f"- **Calibration**: gender temperature {card['gender_temperature']}, age temperature "
             f"{card['age_temperature']} (fitted on the validation parts).", ""]
    lines += full_pipeline_table(card) + group_table(card)
    lines += ["", "**Limitations**", ""] + [f"- {x}" for x in card.get("limitations", [])]
    if card.get("notes"):
        lines += ["", card["notes"]]
    return lines + [""]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(REPO / "docs" / "models.md"))
    args = ap.parse_args()
    lines = ["# The shipped models", "",
             "Generated from the model cards by `python scripts/model_page.py`; `agegender info --model NAME` "
             "prints a card. Full-pipeline figures: `agegender evaluate` (detection and alignment on every "
             "photo), commands in each card's `metrics.full_pipeline`. FairFace val and UTKFace/AAF val parts "
             "chose the epochs and the temperatures; UTKFace test and AAF's official val list were scored once.",
             ""]
    names = {"model": "default"}
    for path in sorted(ASSETS.glob("*.json")):
        card = json.loads(path.read_text())
        if card.get("format") != "agegender-model-card":
            continue
        lines += section(names.get(path.stem, path.stem), card)
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
