"""Evaluation: protocols (splits and leakage checks), the one top-k ranking path,
per-user metrics with their aggregates, and paired comparison of models."""
