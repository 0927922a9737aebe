#!/usr/bin/env bash
# Retrain the built-in models from UTKFace, every step that produced them, in order.
#   bash scripts/retrain.sh           the default model (src/agegender/assets/model.onnx), about 3 h on 2 cores
#   bash scripts/retrain.sh --fast    also the `fast` model (assets/fast.onnx), about 2 h more; needs
#                                     pip install 'agegender[facefeat]' (part of the dev extras)
# Needs the dev (or train) install and UTKFace in ../shared/data/utkface (or data.root set in configs/).
# Every `agegender train` resumes from its run folder if interrupted, so the script can be run again.
set -euo pipefail
cd "$(dirname "$0")/.."
KD=configs/attn_mbv2_kd-utkface.yaml
S3=(--set seed=3 --set name=attn_mbv2_kd-utkface-s3 --set out_dir=runs/attn_mbv2_kd-utkface-s3)

# 1. the first ensemble, runs A (attentional) + B (plain residual), teacher of the distilled runs
agegender train configs/attn_mbv2-utkface.yaml
agegender train configs/mbv2-utkface.yaml
agegender export runs/attn_mbv2-utkface runs/mbv2-utkface --name ensemble --out runs/ensemble-ab/ensemble.onnx
# 2. two distilled students (run D and its seed-3 twin); together, with the mirror pass, the default model
agegender train "$KD"
agegender train "$KD" "${S3[@]}"
agegender export runs/attn_mbv2_kd-utkface runs/attn_mbv2_kd-utkface-s3 --fp16-weights \
  --name attn_mbv2_kd_x2 --version 3.0.0 --out src/agegender/assets/model.onnx
mv src/agegender/assets/model.report.json runs/model.report.json  # val/test numbers; not shipped

if [[ "${1:-}" == "--fast" ]]; then
  # 3. run E (face-embedding gender teacher), the three students as one teacher, then run F: `fast`
  agegender train configs/attn_mbv2_kdface-utkface.yaml
  agegender export runs/attn_mbv2_kd-utkface runs/attn_mbv2_kd-utkface-s3 runs/attn_mbv2_kdface-utkface \
    --name students3 --no-test --out runs/teacher-students3/students3.onnx
  agegender train configs/attn_mbv2_kd2-utkface.yaml
  agegender export runs/attn_mbv2_kd2-utkface --no-flip --fp16-weights --name attn_mbv2_kd2 --version 3.0.0 \
    --out src/agegender/assets/fast.onnx
  mv src/agegender/assets/fast.report.json runs/fast.report.json
fi
