#!/usr/bin/env bash
# Rebuild the shipped `default` and `fast` models (src/agegender/assets/) from a fresh clone, in one session
# on 2 CPU cores. Minutes in [brackets] were measured on 2026-12-06 on the project's 2-core machine (no GPU)
# while other work shared it. `agegender train` resumes from its run folder: the script can be rerun.
#
#   bash scripts/retrain.sh
#
# Needs the dev install (README), UTKFace in ../shared/data/utkface, and:
#   bash ../shared/data/get_aaf.sh GITDIR ../data/aaf            (All-Age-Faces)
#   bash ../shared/data/get_fairface.sh GITDIR ../data/fairface  (FairFace, training part)
# `multidomain` is not retrained here: it is the model of commit 6c4f238, unchanged (its recipes, in configs/,
# take several sessions). The lineage of `default` and `fast`: the v5 default (commit 6c4f238) ->
# configs/ff-a.yaml (fast v5, commit 6099da0) -> configs/ff-b.yaml (fast v6, commit 471f73c) -> configs/ff-d.yaml
# (this script).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs/v7init runs/default runs/fast runs/eval logs

# 0. The network the recipe starts from: ff-b's network as shipped (fast v6), from git history.           [<1]
PARENT=471f73c
for f in fast.onnx fast.json; do git show "$PARENT:src/agegender/assets/$f" > "runs/v7init/$f"; done

# 1. Crop caches and splits of FairFace, UTKFace and All-Age-Faces (the inference detector and aligner).   [4]
agegender cache configs/ff-d.yaml

# 2. The network: fine-tuned again on the three sources, 8 epochs of 8,000 draws, two threads.            [18]
agegender train configs/ff-d.yaml > logs/ff-d.log 2>&1

# 3. `default`: the network and its mirror image averaged in one graph (two passes per face); `fast`: one
#    pass. Both calibrated on the validation parts and scored once on the test parts.                     [9]
agegender export runs/ff-d --fp16-weights --name attn_mbv2_ff --version 8.0.0 --out runs/default/model.onnx \
  --notes "Version 8 of the default: one attentional MobileNetV2 trained on FairFace, UTKFace and All-Age-Faces at once (configs/ff-a.yaml, configs/ff-b.yaml, then configs/ff-d.yaml), run on the face and on its mirror image, averaged inside the graph (two passes per face). Chosen on the validation parts by the mean of the per-source objectives among four candidates (docs/lab/2026-12-06-fairface-2.md)."
agegender export runs/ff-d --no-flip --fp16-weights --name attn_mbv2_ff_fast --version 7.0.0 --out runs/fast/fast.onnx \
  --notes "Version 7 of fast: the default's network alone, one pass per face (configs/ff-d.yaml; docs/lab/2026-12-06-fairface-2.md)."

# 4. The noise ceiling (grain above 95 % of the training crops is smoothed before the network).              [5]
agegender noise-ceiling runs/default/model.json --config configs/ff-d.yaml --percentile 95
agegender noise-ceiling runs/fast/fast.json --config configs/ff-d.yaml --percentile 95

# 5. Full-pipeline figures (detection and alignment on every photo) into each card.                         [10]
for m in runs/default/model.json runs/fast/fast.json; do
  d=runs/eval/$(basename "$m" .json)
  agegender evaluate --model "$m" --card "$m" --label fairface_val --data fairface:../data/fairface/labels.csv \
    --split configs/splits/fairface.csv --part val --out "$d-fairface-val"
  agegender evaluate --model "$m" --card "$m" --label utkface_test --data utkface:../shared/data/utkface \
    --split configs/splits/utkface.csv --part test --out "$d-utkface-test"
  agegender evaluate --model "$m" --card "$m" --label aaf_official_val --data aaf:../data/aaf \
    --split configs/splits/aaf.csv --part test --out "$d-aaf-val"
done

# 6. Ship, and regenerate the models page from the cards.
cp runs/default/model.onnx runs/default/model.json runs/fast/fast.onnx runs/fast/fast.json src/agegender/assets/
python scripts/model_page.py
