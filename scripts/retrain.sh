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
# (fast v7, commit de3ad3a) -> configs/ff-e.yaml (this script).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs/v8init runs/default runs/fast runs/eval logs

# 0. The network the recipe starts from: ff-d's network as shipped (fast v7), from git history.           [<1]
PARENT=de3ad3a
for f in fast.onnx fast.json; do git show "$PARENT:src/agegender/assets/$f" > "runs/v8init/$f"; done

# 1. Crop caches and splits of FairFace, UTKFace and All-Age-Faces (the inference detector and aligner).   [4]
agegender cache configs/ff-e.yaml

# 2. The network: fine-tuned again on the three sources, 22 epochs of 8,000 draws (a quarter of them with a
#    re-saved copy beside them), two threads.                                                              [70]
agegender train configs/ff-e.yaml > logs/ff-e.log 2>&1

# 3. Two points on the line from ff-d's network to ff-e's (`agegender interpolate`: 0.3 and 0.7 of the way),
#    each better on the validation parts than either end. `default`: the 0.3 point and its mirror image
#    averaged in one graph (two passes per face); `fast`: the 0.7 point, one pass. Both calibrated on the
#    validation parts and scored once on the test parts.                                                   [3]
agegender interpolate runs/ff-e --alpha 0.3 --out runs/ff-e-i3
agegender interpolate runs/ff-e --alpha 0.7 --out runs/ff-e-i7
agegender export runs/ff-e-i3 --fp16-weights --name attn_mbv2_ff --version 9.0.0 --out runs/default/model.onnx \
  --notes "Version 9 of the default: one attentional MobileNetV2 trained on FairFace, UTKFace and All-Age-Faces at once (configs/ff-a.yaml, ff-b.yaml, ff-d.yaml, then ff-e.yaml), its weights 0.3 of the way from ff-d's to ff-e's (agegender interpolate), run on the face and on its mirror image, averaged inside the graph (two passes per face). Chosen on the validation parts by the mean of the per-source objectives among seven candidates (docs/lab/2026-12-06-fairface-3.md)."
agegender export runs/ff-e-i7 --no-flip --fp16-weights --name attn_mbv2_ff_fast --version 8.0.0 --out runs/fast/fast.onnx \
  --notes "Version 8 of fast: one attentional MobileNetV2, its weights 0.7 of the way from ff-d's network to ff-e's (configs/ff-e.yaml, agegender interpolate), one pass per face. Chosen on the validation parts among the one-pass candidates (docs/lab/2026-12-06-fairface-3.md)."

# 4. The noise ceiling (grain above 95 % of the training crops is smoothed before the network).              [1]
agegender noise-ceiling runs/default/model.json --config configs/ff-e.yaml --percentile 95
agegender noise-ceiling runs/fast/fast.json --config configs/ff-e.yaml --percentile 95

# 5. Full-pipeline figures (detection and alignment on every photo) into each card.                         [5]
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
