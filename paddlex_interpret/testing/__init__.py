"""Helpers for tests and benchmarks: synthetic datasets with known ground truth and real pretrained models."""
