"""Evaluation: protocols (splits and their leakage checks), the one top-k ranking path,
per-user metrics and ``evaluate``, their statistics (intervals, paired tests, Holm),
and paired comparison of models."""
