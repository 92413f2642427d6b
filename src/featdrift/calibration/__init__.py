"""Planted ground truth for the drift instruments (docs/design.md "Calibration")."""
