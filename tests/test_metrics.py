"""Every metric against small hand-computed values (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agegender.eval.metrics import (
    ADIENCE8,
    FAIRFACE9,
    AgeMetrics,
    BreakdownRow,
    GroupAccuracy,
    GroupScheme,
    age_mae,
    age_metrics,
    age_to_group,
    balanced_accuracy,
    breakdown,
    calibration,
    confusion_matrix,
    cumulative_score,
    exact_accuracy,
    expected_calibration_error,
    gender_accuracy,
    gender_calibration,
    gender_metrics,
    group_accuracy,
    mean_std,
    one_off_accuracy,
)

# ---------------------------------------------------------------------------------------------- age

PRED = [10.0, 22.0, 30.0, 41.0, 70.0]
TRUE = [12.0, 20.0, 36.0, 40.0, 60.0]
# |errors| = 2, 2, 6, 1, 10 -> sum 21 -> MAE 21 / 5 = 4.2
# CS@5: errors <= 5 are 2, 2, 1 -> 3 / 5 = 0.6; CS@2: also 3 / 5 (2 <= 2); CS@1: only 1 -> 1 / 5 = 0.2
# CS@10: all five -> 1.0


def test_age_mae_and_cs():
    assert age_mae(PRED, TRUE) == pytest.approx(4.2)
    assert cumulative_score(PRED, TRUE) == pytest.approx(0.6)
    assert cumulative_score(PRED, TRUE, k=2) == pytest.approx(0.6)
    assert cumulative_score(PRED, TRUE, k=1) == pytest.approx(0.2)
    assert cumulative_score(PRED, TRUE, k=10) == pytest.approx(1.0)
    assert age_metrics(PRED, TRUE) == AgeMetrics(mae=pytest.approx(4.2), cs=pytest.approx(0.6), k=5.0, n=5)


def test_age_metrics_ignore_unknown_true_ages():
    # the NaN true age is skipped: errors 2 and 6 -> MAE 4, CS@5 = 1 / 2
    assert age_mae([10, 99, 30], [12, np.nan, 36]) == pytest.approx(4.0)
    assert cumulative_score([10, 99, 30], [12, np.nan, 36]) == pytest.approx(0.5)
    assert age_metrics([1.0], [np.nan]).n == 0
    assert math.isnan(age_mae([], []))
    with pytest.raises(ValueError):
        age_mae([1, 2], [1])


# ------------------------------------------------------------------------------------------- groups


def test_adience_groups_with_gaps_go_to_nearest():
    ages = [0, 2, 2.4, 2.5, 3, 4, 7, 13, 14, 21, 22, 23, 32.4, 34, 35, 36, 44, 45, 46, 54, 56, 57, 59, 60, 99,
            120]
    # 2.4 rounds to 2 -> 0-2; 2.5 rounds (half up) to 3: 1 from 0-2 and 1 from 4-6, tie -> 0 (younger)
    # 7: 1 from 4-6 and 1 from 8-12 -> tie -> 1; 13: 1 from 8-12, 2 from 15-20 -> 2; 14: 2 vs 1 -> 3
    # 21: 1 vs 4 -> 3; 22: 2 vs 3 -> 3; 23: 3 vs 2 -> 4; 32.4 -> 32 -> 4; 34: 2 vs 4 -> 4
    # 35: 3 vs 3 -> tie -> 4; 36: 4 vs 2 -> 5; 44: 1 vs 4 -> 5; 45: 2 vs 3 -> 5; 46: 3 vs 2 -> 6
    # 54: 1 vs 6 -> 6; 56: 3 vs 4 -> 6; 57: 4 vs 3 -> 7; 59 -> 7; 60, 99, 120 (above the last range) -> 7
    expected = [0, 0, 0, 0, 0, 1, 1, 2, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7, 7, 7]
    assert age_to_group(ages, ADIENCE8).tolist() == expected
    assert ADIENCE8.index([np.nan, 30]).tolist() == [-1, 4]
    assert len(ADIENCE8) == 8 and ADIENCE8.labels[7] == "60+"


def test_fairface_groups():
    ages = [0, 2.49, 2.5, 9, 9.6, 19, 20, 39.5, 69, 70, 85]
    # round half up: 2.49 -> 2 (0-2), 2.5 -> 3 (3-9), 9.6 -> 10 (10-19), 39.5 -> 40 (40-49)
    expected = [0, 0, 1, 1, 2, 2, 3, 5, 7, 8, 8]
    assert age_to_group(ages, FAIRFACE9).tolist() == expected
    assert FAIRFACE9.labels == ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+")


def test_group_scheme_validation():
    with pytest.raises(ValueError):
        GroupScheme("bad", ((0, 5), (3, 9)), ("a", "b"))  # overlapping
    with pytest.raises(ValueError):
        GroupScheme("bad", ((0, 5),), ("a", "b"))


def test_group_accuracy():
    pred = [0, 1, 3, 5, 7, 2, 4]
    true = [0, 2, 3, 3, 6, -1, 4]
    # the -1 sample is ignored -> 6 samples
    # exact: (0,0) yes, (1,2) no, (3,3) yes, (5,3) no, (7,6) no, (4,4) yes -> 3 / 6 = 0.5
    # 1-off: |diff| = 0, 1, 0, 2, 1, 0 -> five within 1 -> 5 / 6
    assert exact_accuracy(pred, true) == pytest.approx(0.5)
    assert one_off_accuracy(pred, true) == pytest.approx(5 / 6)
    assert group_accuracy(pred, true) == GroupAccuracy(exact=0.5, one_off=pytest.approx(5 / 6), n=6)


# ------------------------------------------------------------------------------------------- gender


def test_gender_accuracy_and_balanced_accuracy():
    pred = [0, 0, 0, 0, 1, 1, 0, 1]
    true = [0, 0, 0, 1, 1, -1, -1, 0]
    # known: (0,0) (0,0) (0,0) (0,1) (1,1) (1,0) -> 6 samples, right: 1, 2, 3, 5 -> 4 / 6
    # male (true 0): 4 samples, predicted 0 three times -> recall 3/4
    # female (true 1): 2 samples, predicted 1 once -> recall 1/2
    # balanced = (0.75 + 0.5) / 2 = 0.625
    assert gender_accuracy(pred, true) == pytest.approx(4 / 6)
    assert balanced_accuracy(pred, true) == pytest.approx(0.625)
    m = gender_metrics(pred, true)
    assert (m.accuracy, m.balanced_accuracy, m.n, m.n_ignored) == (pytest.approx(4 / 6), 0.625, 6, 2)
    assert math.isnan(gender_accuracy([0, 1], [-1, -1]))
    # only one class present: balanced accuracy is that class's recall (1 of 2 right)
    assert balanced_accuracy([1, 0], [1, 1]) == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------- confusion


def test_confusion_matrix():
    pred = [0, 1, 1, 2, 2, 2, 0]
    true = [0, 1, 2, 2, 2, 0, -1]
    # rows true, columns pred (the -1 sample ignored):
    # true 0: pred 0, pred 2 -> [1, 0, 1]; true 1: pred 1 -> [0, 1, 0]; true 2: pred 1, 2, 2 -> [0, 1, 2]
    cm = confusion_matrix(pred, true, labels=["a", "b", "c"])
    assert cm.counts.tolist() == [[1, 0, 1], [0, 1, 0], [0, 1, 2]]
    assert cm.labels == ("a", "b", "c")
    assert cm.total == 6
    assert cm.accuracy == pytest.approx(4 / 6)  # trace 1 + 1 + 2
    assert cm.recall() == pytest.approx([1 / 2, 1.0, 2 / 3])  # diag / row sums 2, 1, 3
    assert cm.precision() == pytest.approx([1.0, 1 / 2, 2 / 3])  # diag / column sums 1, 2, 3
    assert cm.normalized()[2].tolist() == pytest.approx([0, 1 / 3, 2 / 3])
    # n_classes larger than what was seen: unseen class rows stay zero
    cm4 = confusion_matrix(pred, true, n_classes=4)
    assert cm4.counts.shape == (4, 4) and cm4.counts[3].sum() == 0 and cm4.labels[3] == "3"
    assert np.isnan(cm4.recall()[3])
    with pytest.raises(ValueError):
        confusion_matrix([0, 5], [0, 1], n_classes=3)


# ------------------------------------------------------------------------------------------- folds


def test_mean_std_over_folds():
    values = [0.5, 0.6, 0.7, 0.6, 0.6]
    # mean = 3.0 / 5 = 0.6; squared deviations 0.01, 0, 0.01, 0, 0 -> sum 0.02
    # sample std (ddof=1) = sqrt(0.02 / 4) = sqrt(0.005) = 0.0707107
    # population std (ddof=0) = sqrt(0.02 / 5) = sqrt(0.004) = 0.0632456
    ms = mean_std(values)
    assert ms.mean == pytest.approx(0.6)
    assert ms.std == pytest.approx(math.sqrt(0.005))
    assert ms.n == 5 and ms.values == tuple(values)
    assert mean_std(values, ddof=0).std == pytest.approx(math.sqrt(0.004))
    assert str(ms) == "0.6 ± 0.071 (n=5)"
    assert math.isnan(mean_std([0.5]).std)


# ---------------------------------------------------------------------------------------- breakdown


def test_breakdown_by_two_keys():
    pred = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    true = np.array([12.0, 20.0, 35.0, 40.0, 41.0, 61.0])
    # |errors|          2,    0,    5,    0,    9,    1
    gender = ["m", "f", "m", "f", "m", "m"]
    band = ["10-19", "20-29", "3-9", "3-9", "10-19", "10-19"]
    rows = breakdown(age_mae, pred, true, by={"gender": gender, "band": band}, include_all=True)
    # groups (natural order: f before m; 3-9 before 10-19 before 20-29):
    # f/3-9: sample 3 -> MAE 0; f/20-29: sample 1 -> 0
    # m/3-9: sample 2 -> 5; m/10-19: samples 0, 4, 5 -> (2 + 9 + 1) / 3 = 4
    # all: (2 + 0 + 5 + 0 + 9 + 1) / 6 = 17 / 6
    assert rows == [
        BreakdownRow({"gender": "f", "band": "3-9"}, 1, 0.0),
        BreakdownRow({"gender": "f", "band": "20-29"}, 1, 0.0),
        BreakdownRow({"gender": "m", "band": "3-9"}, 1, 5.0),
        BreakdownRow({"gender": "m", "band": "10-19"}, 3, pytest.approx(4.0)),
        BreakdownRow({"gender": "all", "band": "all"}, 6, pytest.approx(17 / 6)),
    ]
    # min_count drops the single-sample cells
    rows = breakdown(age_mae, pred, true, by={"gender": gender, "band": band}, min_count=2)
    assert [(r.keys, r.n) for r in rows] == [({"gender": "m", "band": "10-19"}, 3)]


def test_breakdown_any_metric():
    pred = [0, 1, 1, 0]
    true = [0, 1, 0, -1]
    race = ["x", "y", "x", "y"]
    # x: samples 0, 2 -> right, wrong -> 0.5; y: samples 1, 3 -> right, ignored -> 1.0
    rows = breakdown(gender_accuracy, pred, true, by={"race": race})
    assert [(r.keys["race"], r.n, r.value) for r in rows] == [("x", 2, 0.5), ("y", 2, 1.0)]
    with pytest.raises(ValueError):
        breakdown(gender_accuracy, pred, true, by={"race": race[:3]})


# -------------------------------------------------------------------------------------- calibration


def test_calibration_bins_and_ece():
    conf = [0.05, 0.15, 0.55, 0.65, 0.65, 0.95, 0.95, 0.95, 0.95, 1.0]
    correct = [0, 1, 1, 0, 1, 1, 1, 1, 0, 1]
    # 10 bins of width 0.1 ((lo, hi], the first also holds 0):
    # bin 0 (0, .1]:   0.05, wrong           -> conf 0.05, acc 0,    gap 0.05, weight 1/10
    # bin 1 (.1, .2]:  0.15, right           -> conf 0.15, acc 1,    gap 0.85, weight 1/10
    # bin 5 (.5, .6]:  0.55, right           -> conf 0.55, acc 1,    gap 0.45, weight 1/10
    # bin 6 (.6, .7]:  0.65 x2, one right    -> conf 0.65, acc 0.5,  gap 0.15, weight 2/10
    # bin 9 (.9, 1]:   0.95 x4 + 1.0, 4 right -> conf 0.96, acc 0.8, gap 0.16, weight 5/10
    # ECE = 0.005 + 0.085 + 0.045 + 0.03 + 0.08 = 0.245; MCE = 0.85
    cal = calibration(conf, correct, n_bins=10)
    assert cal.ece == pytest.approx(0.245)
    assert cal.mce == pytest.approx(0.85)
    assert cal.n == 10
    assert [b.count for b in cal.bins] == [1, 1, 0, 0, 0, 1, 2, 0, 0, 5]
    b9 = cal.bins[9]
    assert (b9.lo, b9.hi, b9.confidence, b9.accuracy) == (pytest.approx(0.9), 1.0, pytest.approx(0.96), 0.8)
    assert math.isnan(cal.bins[2].confidence) and math.isnan(cal.bins[2].accuracy)
    assert expected_calibration_error(conf, correct) == pytest.approx(0.245)
    # two bins: [0, .5] holds 0.05 (wrong), 0.15 (right) -> conf 0.1, acc 0.5, gap 0.4, weight 0.2
    # (.5, 1] holds the other 8: conf (0.55 + 1.3 + 3.8 + 1.0) / 8 = 6.65 / 8 = 0.83125, acc 6/8 = 0.75,
    # gap 0.08125, weight 0.8 -> ECE = 0.08 + 0.065 = 0.145
    assert expected_calibration_error(conf, correct, n_bins=2) == pytest.approx(0.145)
    with pytest.raises(ValueError):
        calibration([1.2], [1])


def test_gender_calibration():
    p_female = [0.9, 0.2, 0.6, 0.3, 0.8]
    true = [1, 0, 0, -1, 1]
    # unknown dropped -> p 0.9, 0.2, 0.6, 0.8 with true 1, 0, 0, 1
    # predictions female, male, female, female; confidence 0.9, 0.8, 0.6, 0.8; correct 1, 1, 0, 1
    # 5 bins of 0.2: (.4, .6] holds 0.6 wrong -> gap 0.6, weight 1/4
    #                (.6, .8] holds 0.8, 0.8 both right -> gap 0.2, weight 2/4
    #                (.8, 1]  holds 0.9 right -> gap 0.1, weight 1/4
    # ECE = 0.15 + 0.1 + 0.025 = 0.275
    cal = gender_calibration(p_female, true, n_bins=5)
    assert cal.n == 4
    assert [b.count for b in cal.bins] == [0, 0, 1, 2, 1]
    assert cal.ece == pytest.approx(0.275)
