"""Experiments: a benchmark (data → split → models → metrics → report) and tuning."""
