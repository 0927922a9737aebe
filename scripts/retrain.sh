#!/usr/bin/env bash
# Rebuild the shipped models (`default` and `fast`, src/agegender/assets/) from a fresh clone, in one session
# on 2 CPU cores. Minutes in [brackets] were measured on 2026-12-06 on the project's 2-core machine (no GPU)
# while other work shared it; `agegender train` resumes from its run folder, so the script can be rerun.
#
#   bash scripts/retrain.sh
#
# Needs the dev install (README), UTKFace in ../shared/data/utkface, and:
#   bash ../shared/data/get_aaf.sh GITDIR ../data/aaf            (All-Age-Faces)
#   bash ../shared/data/get_fairface.sh GITDIR ../data/fairface  (FairFace, training part)
set -euo pipefail
cd "$(dirname "$0")/.."

# 0. The networks the recipes start from: the default and `multidomain` shipped before FairFace, from git.  [<1]
PARENT=6c4f238
mkdir -p runs/parent runs/parent-md logs
for f in model.onnx model.json; do git show "$PARENT:src/agegender/assets/$f" > "runs/parent/$f"; done
for f in multidomain.onnx multidomain.json; do git show "$PARENT:src/agegender/assets/$f" > "runs/parent-md/$f"; done

# 1. Crop caches: the inference detector and aligner run once per training photo (FairFace, UTKFace, AAF),
#    tight crops, then the wide view from the same landmarks.                                                [4]
agegender cache configs/ff-a.yaml configs/ff-w.yaml

# 2. The two networks, side by side, one core each: tight crop (ff-a) and wide view (ff-w).                   [TRAIN]
agegender train configs/ff-a.yaml > logs/ff-a.log 2>&1 & A=$!
agegender train configs/ff-w.yaml > logs/ff-w.log 2>&1 & W=$!
wait $A
wait $W

# 3. `default`: both networks, one pass each, calibrated on the validation parts of the three sources.       [EXPORT]
agegender export runs/ff-a runs/ff-w --no-flip --fp16-weights --name attn_mbv2_ff --version 6.0.0 \
  --out runs/default/model.onnx
# 4. `fast`: the tight-crop network alone.
agegender export runs/ff-a --no-flip --fp16-weights --name attn_mbv2_ff_fast --version 5.0.0 --out runs/fast/fast.onnx

# 5. Full-pipeline figures (detection and alignment on every photo) into each card, then ship.                 [EVAL]
for m in runs/default/model.json runs/fast/fast.json; do
  d=runs/eval/$(basename "$m" .json)
  agegender evaluate --model "$m" --card "$m" --label fairface_val --data fairface:../data/fairface/labels.csv \
    --split configs/splits/fairface.csv --part val --out "$d-fairface-val"
  agegender evaluate --model "$m" --card "$m" --label utkface_test --data utkface:../shared/data/utkface \
    --split configs/splits/utkface.csv --part test --out "$d-utkface-test"
  agegender evaluate --model "$m" --card "$m" --label aaf_official_val --data aaf:../data/aaf \
    --split configs/splits/aaf.csv --part test --out "$d-aaf-val"
done
cp runs/default/model.onnx runs/default/model.json runs/fast/fast.onnx runs/fast/fast.json src/agegender/assets/
