"""What the card_stopNN.py scripts share: write full-pipeline figures, the leave-one-domain-out entry, extra
limitations and the notes into an exported model card."""

import json
from pathlib import Path


def update_card(card_path: Path, full_pipeline: dict, leave_one_domain_out: dict, limitations: list[str],
                notes: str) -> None:
    card = json.loads(card_path.read_text())
    card["metrics"]["full_pipeline"] = full_pipeline
    card["metrics"]["leave_one_domain_out"] = leave_one_domain_out
    card["limitations"] += [x for x in limitations if x not in card["limitations"]]
    card["notes"] = notes
    card_path.write_text(json.dumps(card, indent=2))
    print(f"updated {card_path}")
