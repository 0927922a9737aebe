#!/usr/bin/env bash
# Retrain the built-in models from UTKFace and All-Age-Faces, every step that produced them, in order.
#   bash scripts/retrain.sh           the default model (src/agegender/assets/model.onnx), about 3.5 h on 2 cores
#   bash scripts/retrain.sh --fast    also the `fast` model (assets/fast.onnx), about 2 h more
# Needs the dev install (train + facefeat extras), UTKFace in ../shared/data/utkface and All-Age-Faces in
# ../data/aaf (bash ../shared/data/get_aaf.sh GITDIR ../data/aaf; see ../shared/data/README.md).
# Every `agegender train` resumes from its run folder if interrupted, so the script can be run again.
set -euo pipefail
cd "$(dirname "$0")/.."
KD=configs/attn_mbv2_kd-utkface.yaml
S3=(--set seed=3 --set name=attn_mbv2_kd-utkface-s3 --set out_dir=runs/attn_mbv2_kd-utkface-s3)

# 1. the first ensemble, runs A (attentional) + B (plain residual), teacher of the distilled runs
agegender train configs/attn_mbv2-utkface.yaml
agegender train configs/mbv2-utkface.yaml
agegender export runs/attn_mbv2-utkface runs/mbv2-utkface --name ensemble --out runs/ensemble-ab/ensemble.onnx
# 2. two distilled students (run D and its seed-3 twin); together, with the mirror pass, the v3 default
#    (UTKFace only): the start of step 3 and model A of the label-noise check
agegender train "$KD"
agegender train "$KD" "${S3[@]}"
agegender export runs/attn_mbv2_kd-utkface runs/attn_mbv2_kd-utkface-s3 --fp16-weights \
  --name attn_mbv2_kd_x2 --version 3.0.0 --out runs/default-v3/model.onnx
# 3. cross-domain fine-tuning (issue 12): UTKFace twins, noisy AAF gender labels, then D and D seed 3
#    fine-tuned on UTKFace + AAF with the photo-domain augmentation; together, with the mirror pass, the default
agegender twins --data utkface:../shared/data/utkface --out configs/splits/utkface_twins.csv
agegender clean --data aaf:../data/aaf --split configs/splits/aaf.csv --cache cache/aaf-112 \
  --model runs/default-v3/model.json --out configs/clean/aaf_gender_noise.csv
XD=configs/xd-utkaaf.yaml
agegender train "$XD"
agegender train "$XD" --set seed=1 --set init=runs/attn_mbv2_kd-utkface-s3 --set name=xd-utkaaf-s1 \
  --set out_dir=runs/xd-utkaaf-s1
agegender export runs/xd-utkaaf runs/xd-utkaaf-s1 --fp16-weights --name xd_utkaaf_x2 --version 4.0.0 \
  --out src/agegender/assets/model.onnx
mv src/agegender/assets/model.report.json runs/model.report.json  # val/test numbers; not shipped
# leave-one-domain-out checks of the recipe (not shipped): UTKFace alone, AAF alone
agegender train configs/xd-utk.yaml
agegender train configs/xd-aaf.yaml

if [[ "${1:-}" == "--fast" ]]; then
  # 5. run E (face-embedding gender teacher), the three students as one teacher, then run F
  agegender train configs/attn_mbv2_kdface-utkface.yaml
  agegender export runs/attn_mbv2_kd-utkface runs/attn_mbv2_kd-utkface-s3 runs/attn_mbv2_kdface-utkface \
    --name students3 --no-test --out runs/teacher-students3/students3.onnx
  agegender train configs/attn_mbv2_kd2-utkface.yaml
  # 6. run F fine-tuned with the cross-domain recipe: the `fast` model
  agegender train "$XD" --set init=runs/attn_mbv2_kd2-utkface --set name=xd-utkaaf-fast \
    --set out_dir=runs/xd-utkaaf-fast
  agegender export runs/xd-utkaaf-fast --no-flip --fp16-weights --name xd_utkaaf_fast --version 4.0.0 \
    --out src/agegender/assets/fast.onnx
  mv src/agegender/assets/fast.report.json runs/fast.report.json
fi
