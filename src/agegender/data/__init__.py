"""Datasets: annotation tables, aligned-crop cache and splits (training side; needs no torch)."""
