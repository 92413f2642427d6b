"""Evaluation through lm-eval's `simple_evaluate` on an already loaded model."""
