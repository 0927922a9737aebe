"""Adds the full-pipeline figures, the leave-one-domain-out entry, a limitation and the notes to the card of
`multidomain` v7 (stop 15), from the `agegender evaluate` runs listed in docs/lab/2026-11-28-stop-15.md. Run
after the export and the evaluations:

  python experiments/scripts/card_stop15.py runs/multidomain-v7/multidomain.json
"""

import sys
from pathlib import Path

from card_update import update_card

EVALUATE = "agegender evaluate --model multidomain"
FULL_PIPELINE = {
    "utkface_test": {
        "n": 3164, "faces_found": 3162, "age_mae": 4.41, "gender_accuracy": 0.953, "gender_ece": 0.0114,
        "paired_against_v6": "age MAE 4.451 -> 4.413 (-0.038 +- 0.027 SE) over the same 3,162 faces; gender right "
                             "3016 -> 3013 (29 faces only v6 got right, 26 only v7)",
        "command": f"{EVALUATE} --data utkface:../shared/data/utkface --split configs/splits/utkface.csv --part test "
                   "--out DIR",
    },
    "aaf_official_val": {
        "n": 6685, "faces_found": 6685, "age_mae": 5.26, "gender_accuracy": 0.955, "gender_ece": 0.0068,
        "paired_against_v6": "age MAE 5.364 -> 5.262 (-0.102 +- 0.024 SE) over the same 6,685 photos; gender right "
                             "6355 -> 6387 (48 faces only v6 got right, 80 only v7)",
        "command": f"{EVALUATE} --data aaf:../data/aaf --split configs/splits/aaf.csv --part test --out DIR",
    },
    "aaf_official_val_flagged_labels_left_out": {
        "n": 6648, "age_mae": 5.26, "gender_accuracy": 0.961,
        "command": "the same with --predictions DIR/predictions.csv --drop configs/clean/aaf_gender_noise.csv",
    },
}
LEAVE_ONE_DOMAIN_OUT = {
    "note": "Not measured for this recipe: its wide network (xd-ctx-long) and its tight one (xd-kd-s1, distilled "
            "from teachers that saw both sources) have no UTKFace-only counterparts; training them would take about "
            "three hours on this machine. The v5 recipe's figures: docs/lab/README.md.",
}
LIMITATION = (
    "The second network reads a wide view of the head (hair, ears, part of the neck and clothes). Hair and clothes "
    "carry the gender conventions of the training photos: a short-haired woman in a studio portrait (the README's "
    "sample) comes out male 90 %, more confidently than with v6 (64 %). Judge it on your own photos."
)
NOTES = (
    "Version 7 of the cross-domain model: two networks, each with the mirror pass, four passes per face (v6: two). "
    "Network 0 is runs/xd-kd-s1 (multidomain v6's second network, the 'fast' model) on the tight crop; network 1 is "
    "runs/xd-ctx-long, which reads a second, wide view of the same face (margin 0.15, grey past the photo: "
    "card alignment.views). It is the v3 default's first network fine-tuned on UTKFace + All-Age-Faces for 3 + 6 "
    "epochs of 8,000 draws on that framing, with the context mask: half of the training crops are shown only "
    "inside the window of a random UTKFace photo, so grey fill does not give the source away (configs/xd-ctx.yaml, "
    "configs/xd-ctx-long.yaml). Chosen on the validation parts by a rule written before they were scored: the "
    "lowest mean of the per-source objectives among combinations of up to four passes (6.066 against 6.094 for v6; "
    "experiments/benchmarks/combine_sources.py). Through the full pipeline: UTKFace test 4.41 / 95.3 % "
    "(v6 4.45 / 95.4 %, "
    "not significantly different), All-Age-Faces official val 5.26 / 95.5 % (v6 5.36 / 95.1 %; paired: -0.10 "
    "years, 32 more faces right). It meets issue 12's All-Age-Faces gender bar (>= 95.5 %), not its age bar "
    "(<= 4.8), and is not the default: on UTKFace it is 0.08 years behind the default, and it costs twice the "
    "default's passes. All-Age-Faces' official val list is its test part here. docs/lab/README.md has the "
    "per-source figures, the stress subsets and what did not work."
)

if __name__ == "__main__":
    update_card(Path(sys.argv[1]), FULL_PIPELINE, LEAVE_ONE_DOMAIN_OUT, [LIMITATION], NOTES)
