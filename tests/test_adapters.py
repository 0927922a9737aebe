"""Dataset adapters on the real annotation files (when present) and on generated files with bad rows."""

from __future__ import annotations

import csv
import math
import os
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from agegender.data.adience import N_ROWS_PUBLISHED, load_adience, map_age_range
from agegender.data.fairface import load_fairface_csv, parse_age_bin
from agegender.data.generic import load_generic_csv
from agegender.data.imdbwiki import age_at_photo, datenum_to_date, load_imdbwiki_mat
from agegender.data.utkface import load_utkface, parse_name
from agegender.errors import DatasetError
from agegender.eval.metrics import ADIENCE8, age_to_group
from agegender.types import ADIENCE_GROUPS, ADIENCE_LABELS

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
ADIENCE_DIR = SHARED / "adience"
UTKFACE_DIR = SHARED / "utkface"

HEADER = (
    "user_id\toriginal_image\tface_id\tage\tgender\tx\ty\tdx\tdy\ttilt_ang\tfiducial_yaw_angle\tfiducial_score"
)


def _jpeg(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (120, 80, 40)).save(path, format="JPEG")


def _adience_row(user: str, image: str, face: str, age: str, gender: str) -> str:
    return "\t".join([user, image, face, age, gender, "0", "0", "10", "10", "0", "0", "50"])


# ----------------------------------------------------------------------------------- Adience rule


def test_map_age_range_canonical_groups_map_to_themselves():
    for i, (lo, hi) in enumerate(ADIENCE_GROUPS):
        assert map_age_range(lo, hi) == i


@pytest.mark.parametrize(
    ("lo", "hi", "label"),
    [
        (27, 32, "25-32"),  # midpoint 29.5 inside 25-32
        (38, 42, "38-43"),  # midpoint 40 inside 38-43
        (38, 48, "38-43"),  # midpoint 43 is 38-43's upper bound
        (8, 23, "15-20"),  # midpoint 15.5 inside 15-20
        (25, 23, "25-32"),  # reversed; midpoint 24: 1 from 25-32, 4 from 15-20
        (13, 13, "8-12"),  # 1 from 8-12, 2 from 15-20
        (22, 22, "15-20"),  # 2 from 15-20, 3 from 25-32
        (23, 23, "25-32"),  # 3 from 15-20, 2 from 25-32
        (34, 34, "25-32"),  # 2 vs 4
        (35, 35, "25-32"),  # 3 vs 3: tie goes to the younger group
        (36, 36, "38-43"),  # 4 vs 2
        (3, 3, "0-2"),  # tie 1 vs 1 -> younger
        (45, 45, "38-43"),
        (55, 55, "48-53"),
        (57, 57, "60+"),  # 4 from 48-53, 3 from 60+
        (0, 0, "0-2"),
        (105, 105, "60+"),
    ],
)
def test_map_age_range_off_grid(lo, hi, label):
    assert ADIENCE_LABELS[map_age_range(lo, hi)] == label


def test_map_age_range_agrees_with_metric_groups_for_whole_years():
    ages = np.arange(0, 101)
    assert [map_age_range(a, a) for a in ages] == age_to_group(ages, ADIENCE8).tolist()


# ------------------------------------------------------------------------------- Adience real data


@pytest.fixture(scope="module")
def adience_real():
    if not ADIENCE_DIR.is_dir():
        pytest.skip(f"Adience fold files not found at {ADIENCE_DIR}")
    raw = []
    for k in range(5):
        with open(ADIENCE_DIR / f"fold_{k}_data.txt", newline="") as fh:
            raw += [(k, row) for row in csv.DictReader(fh, delimiter="\t")]
    records, report = load_adience(ADIENCE_DIR)
    return raw, records, report


def test_adience_real_counts_add_up(adience_real):
    raw, records, report = adience_real
    assert len(raw) == N_ROWS_PUBLISHED
    assert report.kept == len(records)
    assert report.kept + sum(report.dropped.values()) == N_ROWS_PUBLISHED
    n_none = sum(row["age"] == "None" for _, row in raw)
    assert report.dropped.get("age None") == n_none > 0
    assert {r.fold for r in records} == {0, 1, 2, 3, 4}
    assert all(r.source == "adience" and r.subject for r in records)


def test_adience_real_every_row_has_a_canonical_group(adience_real):
    _, records, _ = adience_real
    for r in records:
        group = ADIENCE_LABELS.index(r.extra["age_group"])
        lo, hi = ADIENCE_GROUPS[group]
        if r.age is None:  # range label: the group's bounds
            assert (r.age_low, r.age_high) == (lo, hi)
        else:  # single age: kept, and mapped by the documented rule
            assert r.age == r.age_low == r.age_high
            assert map_age_range(r.age, r.age) == group
        assert r.path.startswith(f"aligned/{r.subject}/landmark_aligned_face.")


def test_adience_real_unknown_genders_are_masked(adience_real):
    raw, records, report = adience_real
    kept_raw = [(k, row) for k, row in raw if row["age"] != "None"]
    assert len(kept_raw) == len(records)
    n_u = 0
    for (k, row), r in zip(kept_raw, records, strict=True):
        assert r.fold == k and r.subject == row["user_id"] and r.extra["age_raw"] == row["age"]
        g = row["gender"].strip()
        expected = {"f": "female", "m": "male"}.get(g, "")
        assert r.gender == expected
        if g == "u":
            n_u += 1
            assert r.gender_index == -1
    assert n_u > 0
    assert report.mapped["gender 'u' -> unknown"] == n_u
    assert sum(r.gender == "" for r in records) == n_u + report.mapped.get("gender blank -> unknown", 0)


# ------------------------------------------------------------------------------ Adience generated


@pytest.fixture()
def adience_tree(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "adience"
    folds = tmp_path / "folds"
    folds.mkdir()
    _jpeg(root / "aligned/userA/landmark_aligned_face.1.img1.jpg")
    _jpeg(root / "faces/userA/coarse_tilt_aligned_face.2.img2.jpg")  # only the coarse crop exists
    _jpeg(root / "aligned/userB/landmark_aligned_face.3.img3.jpg")
    _jpeg(root / "aligned/userC/landmark_aligned_face.6.img6.jpg")
    fold0 = [
        HEADER,
        _adience_row("userA", "img1.jpg", "1", "(25, 32)", "f"),
        _adience_row("userA", "img2.jpg", "2", "(8, 23)", "m"),
        _adience_row("userB", "img3.jpg", "3", "35", "u"),
        _adience_row("userB", "img4.jpg", "4", "(4, 6)", ""),  # no image anywhere
        _adience_row("userB", "img5.jpg", "5", "None", "f"),
        _adience_row("userB", "img7.jpg", "7", "(abc)", "f"),
        "onlyone\tcolumn",
        "",
        _adience_row("", "img8.jpg", "8", "(0, 2)", "m"),
    ]
    (folds / "fold_0_data.txt").write_text("\n".join(fold0) + "\n")
    fold3 = [HEADER, _adience_row("userC", "img6.jpg", "6", "(60, 100)", "m")]
    (folds / "fold_3_data.txt").write_text("\n".join(fold3) + "\n")
    (folds / "notes.txt").write_text("not a fold file\n")
    return folds, root


def test_adience_generated_with_images(adience_tree):
    folds, root = adience_tree
    records, report = load_adience(folds, root)
    by_face = {r.extra["face_id"]: r for r in records}
    assert sorted(by_face) == ["1", "2", "3", "6"]
    assert by_face["1"].path == str(root / "aligned/userA/landmark_aligned_face.1.img1.jpg")
    assert by_face["2"].path == str(root / "faces/userA/coarse_tilt_aligned_face.2.img2.jpg")
    assert (by_face["1"].age, by_face["1"].age_low, by_face["1"].age_high) == (None, 25, 32)
    assert (by_face["2"].age_low, by_face["2"].age_high, by_face["2"].extra["age_group"]) == (15, 20, "15-20")
    assert (by_face["3"].age, by_face["3"].extra["age_group"], by_face["3"].gender) == (35, "25-32", "")
    assert by_face["6"].fold == 3 and by_face["6"].extra["age_group"] == "60+"
    assert by_face["1"].fold == 0 and by_face["1"].subject == "userA" and by_face["1"].gender == "female"
    assert report.kept == 4
    assert report.dropped == {
        "image missing": 1,
        "age None": 1,
        "age unparseable": 1,
        "malformed row (too few columns)": 1,
        "blank line": 1,
        "malformed row (empty id or image)": 1,
    }
    assert report.mapped == {
        "range (8, 23) -> 15-20": 1,
        "single age 35 -> 25-32": 1,
        "gender 'u' -> unknown": 1,
    }
    assert "kept 4" in report.summary()


def test_adience_generated_without_image_root_keeps_relative_aligned_paths(adience_tree):
    folds, _ = adience_tree
    records, report = load_adience(folds)
    assert report.kept == 5  # the row without any image is kept now
    assert all(r.path.startswith("aligned/") for r in records)
    img4 = next(r for r in records if r.extra["face_id"] == "4")
    assert img4.path == "aligned/userB/landmark_aligned_face.4.img4.jpg"
    assert img4.gender == "" and report.mapped["gender blank -> unknown"] == 1


def test_adience_bad_inputs(tmp_path: Path):
    with pytest.raises(DatasetError):
        load_adience(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no fold"):
        load_adience(tmp_path)
    (tmp_path / "fold_1_data.txt").write_text("user_id\tage\n")
    with pytest.raises(DatasetError, match="missing column"):
        load_adience(tmp_path)


# ---------------------------------------------------------------------------------------- FairFace


FAIRFACE_CSV = """file,age,gender,race,service_test
train/1.jpg,50-59,Male,East Asian,True
train/2.jpg,more than 70,female,White,False
train/3.jpg,70+,FEMALE,Black,True
train/4.jpg,3-9,Male,Indian,False
train/5.jpg,abc,Male,White,True
train/6.jpg,20-29,Unknown,White,True
,20-29,Male,White,True
train/8.jpg,30-39,Male,White,True,surplus
train/9.jpg,9-3,Male,White,True
train/10.jpg
"""


def test_parse_age_bin():
    assert parse_age_bin("0-2") == (0, 2)
    assert parse_age_bin(" 60-69 ") == (60, 69)
    assert parse_age_bin("more than 70") == (70, 100)
    assert parse_age_bin("70+") == (70, 100)
    assert parse_age_bin("9-3") is None
    assert parse_age_bin("seventy") is None


def test_fairface_csv(tmp_path: Path):
    path = tmp_path / "fairface_label_train.csv"
    path.write_text(FAIRFACE_CSV)
    records, report = load_fairface_csv(path)
    assert [Path(r.path).name for r in records] == ["1.jpg", "2.jpg", "3.jpg", "4.jpg"]
    assert records[0].path == str(tmp_path / "train/1.jpg")  # resolved against the CSV's folder
    assert [(r.age, r.age_low, r.age_high) for r in records] == [
        (None, 50, 59), (None, 70, 100), (None, 70, 100), (None, 3, 9),
    ]
    assert [r.gender for r in records] == ["male", "female", "female", "male"]
    assert records[0].extra == {"race": "East Asian", "service_test": "True"}
    assert all(r.source == "fairface" for r in records)
    assert report.kept == 4
    assert report.dropped == {
        "age bin unparseable": 3,  # abc, 9-3 and the truncated last row
        "gender unparseable": 1,
        "empty file name": 1,
        "malformed row (too many columns)": 1,
    }
    assert report.mapped == {"age bin '70+' -> 70-100": 1}


def test_fairface_with_image_root_drops_missing_images(tmp_path: Path):
    path = tmp_path / "labels.csv"
    path.write_text(FAIRFACE_CSV)
    root = tmp_path / "images"
    _jpeg(root / "train/1.jpg")
    _jpeg(root / "train/4.jpg")
    records, report = load_fairface_csv(path, image_root=root)
    assert [r.path for r in records] == [str(root / "train/1.jpg"), str(root / "train/4.jpg")]
    assert report.dropped["image missing"] == 2


def test_fairface_missing_column(tmp_path: Path):
    path = tmp_path / "labels.csv"
    path.write_text("file,gender\n1.jpg,Male\n")
    with pytest.raises(DatasetError, match="age"):
        load_fairface_csv(path)
    with pytest.raises(DatasetError):
        load_fairface_csv(tmp_path / "absent.csv")


# --------------------------------------------------------------------------------------- IMDB-WIKI


def _datenum(d: date) -> float:
    return float(d.toordinal() + 366)


def _cell(items: list[str]) -> np.ndarray:
    out = np.empty((1, len(items)), dtype=object)
    for i, s in enumerate(items):
        out[0, i] = s
    return out


def _write_mat(path: Path, key: str, rows: list[dict], with_celeb: bool = True) -> None:
    fields = {
        "dob": np.array([[r["dob"] for r in rows]], dtype=float),
        "photo_taken": np.array([[r["taken"] for r in rows]], dtype=float),
        "full_path": _cell([r["path"] for r in rows]),
        "gender": np.array([[r["gender"] for r in rows]], dtype=float),
        "name": _cell([r["name"] for r in rows]),
        "face_location": _cell([np.array([[1.0, 2.0, 3.0, 4.0]]) for _ in rows]),
        "face_score": np.array([[r["score"] for r in rows]], dtype=float),
        "second_face_score": np.array([[r["second"] for r in rows]], dtype=float),
    }
    if with_celeb:
        fields["celeb_id"] = np.array([[r["celeb"] for r in rows]], dtype=float)
    scipy.io.savemat(str(path), {key: fields})


NAN, NEG_INF = float("nan"), float("-inf")
IMDB_ROWS = [
    # 0: born 10 March 1980, photo 2010 -> 30; gender 1 = male
    dict(dob=_datenum(date(1980, 3, 10)), taken=2010, path="01/a.jpg", gender=1, name="Ann", score=4.5,
         second=NAN, celeb=7),
    # 1: born 15 August, after July 1st -> 2010 - 1980 - 1 = 29; gender 0 = female
    dict(dob=_datenum(date(1980, 8, 15)), taken=2010, path="02/b.jpg", gender=0, name="Bea", score=2.0,
         second=NAN, celeb=8),
    # 2: born on July 1st itself -> not after it -> 30; gender NaN = unknown
    dict(dob=_datenum(date(1980, 7, 1)), taken=2010, path="03/c.jpg", gender=NAN, name="Cy", score=1.0,
         second=NAN, celeb=9),
    dict(dob=_datenum(date(1980, 1, 1)), taken=2010, path="04/d.jpg", gender=1, name="Di", score=NEG_INF,
         second=NAN, celeb=10),  # no face
    dict(dob=_datenum(date(1980, 1, 1)), taken=2010, path="05/e.jpg", gender=1, name="Ed", score=0.5,
         second=NAN, celeb=11),  # face score below 1
    dict(dob=_datenum(date(1980, 1, 1)), taken=2010, path="06/f.jpg", gender=0, name="Flo", score=3.0,
         second=2.0, celeb=12),  # second face; age 30 when kept
    dict(dob=_datenum(date(1990, 1, 1)), taken=1980, path="07/g.jpg", gender=1, name="Gus", score=3.0,
         second=NAN, celeb=13),  # age -10
    dict(dob=_datenum(date(1850, 1, 1)), taken=2000, path="08/h.jpg", gender=1, name="Hal", score=3.0,
         second=NAN, celeb=14),  # age 150
    dict(dob=0.0, taken=2000, path="09/i.jpg", gender=1, name="Ida", score=3.0, second=NAN,
         celeb=15),  # datenum 0 is not a valid date
    # 9: born 31 Dec 1975, photo 2000 -> 24; empty name
    dict(dob=_datenum(date(1975, 12, 31)), taken=2000, path="10/j.jpg", gender=0, name="", score=5.0,
         second=NAN, celeb=16),
]


def test_imdbwiki_date_rules():
    assert datenum_to_date(719529.0) == date(1970, 1, 1)  # MATLAB datenum(1970, 1, 1)
    assert datenum_to_date(719529.75) == date(1970, 1, 1)  # fraction of a day
    assert datenum_to_date(float("nan")) is None
    assert datenum_to_date(0.0) is None
    assert age_at_photo(date(1980, 7, 1), 2010) == 30
    assert age_at_photo(date(1980, 7, 2), 2010) == 29


def test_imdbwiki_mat(tmp_path: Path):
    path = tmp_path / "imdb.mat"
    _write_mat(path, "imdb", IMDB_ROWS)
    records, report = load_imdbwiki_mat(path)
    assert [r.path for r in records] == ["01/a.jpg", "02/b.jpg", "03/c.jpg", "10/j.jpg"]
    assert [r.age for r in records] == [30, 29, 30, 24]
    assert all(r.age == r.age_low == r.age_high for r in records)
    assert [r.gender for r in records] == ["male", "female", "", "female"]  # 0 is female here
    assert [r.subject for r in records] == ["7", "8", "9", "16"]
    assert records[0].extra == {"name": "Ann"} and records[3].extra == {}
    assert all(r.source == "imdb" for r in records)
    assert report.kept == 4
    assert report.dropped == {
        "no face": 1,
        "face score below 1": 1,
        "second face": 1,
        "age outside 0-100": 2,
        "invalid dob or photo year": 1,
    }
    assert report.mapped == {"gender NaN -> unknown": 1}


def test_imdbwiki_options_and_image_root(tmp_path: Path):
    path = tmp_path / "imdb.mat"
    _write_mat(path, "imdb", IMDB_ROWS)
    records, report = load_imdbwiki_mat(path, min_face_score=0.0, drop_second_face=False)
    paths = [r.path for r in records]
    assert paths == ["01/a.jpg", "02/b.jpg", "03/c.jpg", "05/e.jpg", "06/f.jpg", "10/j.jpg"]
    root = tmp_path / "imdb_crop"
    _jpeg(root / "01/a.jpg")
    records, report = load_imdbwiki_mat(path, image_root=root)
    assert [r.path for r in records] == [str(root / "01/a.jpg")]
    assert report.dropped["image missing"] == 3


def test_wiki_mat_subject_is_the_name(tmp_path: Path):
    path = tmp_path / "wiki.mat"
    _write_mat(path, "wiki", IMDB_ROWS[:2], with_celeb=False)
    records, report = load_imdbwiki_mat(path)
    assert [r.subject for r in records] == ["Ann", "Bea"]
    assert report.source == "wiki" and records[0].source == "wiki"


def test_imdbwiki_bad_inputs(tmp_path: Path):
    with pytest.raises(DatasetError):
        load_imdbwiki_mat(tmp_path / "absent.mat")
    other = tmp_path / "other.mat"
    scipy.io.savemat(str(other), {"celebs": np.zeros((1, 3))})
    with pytest.raises(DatasetError, match="no 'imdb' or 'wiki'"):
        load_imdbwiki_mat(other)
    partial = tmp_path / "partial.mat"
    scipy.io.savemat(str(partial), {"imdb": {"dob": np.zeros((1, 2)), "full_path": _cell(["a", "b"])}})
    with pytest.raises(DatasetError, match="missing field"):
        load_imdbwiki_mat(partial)
    garbage = tmp_path / "garbage.mat"
    garbage.write_bytes(b"this is not a MATLAB file at all" * 10)
    with pytest.raises(DatasetError):
        load_imdbwiki_mat(garbage)


# ----------------------------------------------------------------------------------------- generic


GENERIC_CSV = """path,age,gender,subject_id,fold,note
a.jpg,34,male,s1,0,hello
b.jpg,25-32,F,s2,1,
c.jpg,2.5,,s3,,
{abs},40,Female,s4,2,
e.jpg,30,0,s5,0,
f.jpg,30,1,s6,0,
g.jpg,30,x,s7,0,
h.jpg,,male,s8,0,
i.jpg,32-25,male,s9,0,
j.jpg,-3,male,s10,0,
k.jpg,150,male,s11,0,
l.jpg,30,M,s12,one,
,30,male,s13,0,
m.jpg,30,male,s14,0,x,surplus
"""


def test_generic_csv(tmp_path: Path):
    abs_path = tmp_path / "elsewhere" / "d.jpg"
    path = tmp_path / "ann" / "labels.csv"
    path.parent.mkdir()
    path.write_text(GENERIC_CSV.format(abs=abs_path))
    records, report = load_generic_csv(path)
    assert [r.path for r in records] == [
        str(path.parent / "a.jpg"), str(path.parent / "b.jpg"), str(path.parent / "c.jpg"), str(abs_path),
    ]
    assert [(r.age, r.age_low, r.age_high) for r in records] == [
        (34, 34, 34), (None, 25, 32), (2.5, 2.5, 2.5), (40, 40, 40),
    ]
    assert [r.gender for r in records] == ["male", "female", "", "female"]
    assert [r.subject for r in records] == ["s1", "s2", "s3", "s4"]
    assert [r.fold for r in records] == [0, 1, None, 2]
    assert records[0].extra == {"note": "hello"} and records[1].extra == {}
    assert report.kept == 4
    assert report.dropped == {
        "numeric gender is ambiguous": 2,
        "gender unparseable": 1,
        "age missing": 1,
        "age unparseable or out of range": 3,  # 32-25, -3, 150
        "fold not a non-negative integer": 1,
        "empty path": 1,
        "malformed row (too many columns)": 1,
    }
    assert report.mapped == {"gender blank -> unknown": 1, "age range": 1}


def test_generic_csv_image_root(tmp_path: Path):
    path = tmp_path / "labels.csv"
    path.write_text("Path,Age,Gender\na.jpg,20,m\nb.jpg,21,f\n")  # header case does not matter
    root = tmp_path / "imgs"
    _jpeg(root / "b.jpg")
    records, report = load_generic_csv(path, image_root=root)
    assert [r.path for r in records] == [str(root / "b.jpg")]
    assert report.dropped == {"image missing": 1}
    bad = tmp_path / "bad.csv"
    bad.write_text("file,age\na.jpg,3\n")
    with pytest.raises(DatasetError, match="missing column"):
        load_generic_csv(bad)


# ----------------------------------------------------------------------------------------- UTKFace


def test_utkface_real_names():
    if not UTKFACE_DIR.is_dir():
        pytest.skip(f"UTKFace images not found at {UTKFACE_DIR}")
    names = os.listdir(UTKFACE_DIR)
    assert len(names) > 20000
    no_race = 0
    for name in names:
        parsed = parse_name(name)
        assert parsed is not None, name
        age, gender, race = parsed
        fields = name.split("_")
        assert age == int(fields[0]) and gender == int(fields[1]), name
        assert 1 <= age <= 116 and gender in (0, 1), name
        if race is None:
            no_race += 1
            assert len(fields) == 3, name  # AGE_GENDER_DATETIME...
        else:
            assert race == int(fields[2]), name
    assert 0 < no_race < 10


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("24_0_1_20170116220224657 .jpg.chip.jpg", (24, 0, 1)),  # space before .jpg
        ("39_1_20170116174525125.jpg.chip.jpg", (39, 1, None)),  # race missing
        ("55_0_0_20170116232725357jpg.chip.jpg", (55, 0, 0)),  # dot missing
        ("116_1_3_20170120134921760.jpg", (116, 1, 3)),
        ("30_1_7_20170116174525125.jpg.chip.jpg", (30, 1, None)),  # race out of range
        ("30_2_0_20170116174525125.jpg.chip.jpg", None),  # gender 2
        ("garbage.jpg", None),
        ("_0_0_20170116174525125.jpg", None),
        ("30_1_0_20170116174525125.txt", None),
        ("1234_0_0_20170116174525125.jpg", None),
    ],
)
def test_utkface_tricky_names(name, expected):
    assert parse_name(name) == expected


def test_load_utkface_generated(tmp_path: Path):
    for name in ("24_0_1_20170116220224657 .jpg.chip.jpg", "39_1_20170116174525125.jpg.chip.jpg",
                 "120_1_0_20170116174525125.jpg", "notes.jpg"):
        _jpeg(tmp_path / name)
    records, report = load_utkface(tmp_path)
    assert sorted((r.age, r.gender, r.extra.get("race", "")) for r in records) == [
        (24, "male", "black"), (39, "female", ""), (100, "female", "white"),
    ]
    assert report.dropped == {"unparseable file name": 1}
    assert report.mapped == {"space in file name": 1, "no race field": 1, "age above 100 clipped": 1}
    assert not any(math.isnan(r.age) for r in records)
