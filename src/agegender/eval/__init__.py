"""Evaluation: age, age-group and gender metrics, per-fold summaries, breakdowns and calibration."""
