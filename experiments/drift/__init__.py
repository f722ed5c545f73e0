"""Drift between two time windows of an experiment: ``GET .../reports/drift``."""

from experiments.drift.options import DriftOptions, check, parse
from experiments.drift.report import build_drift

__all__ = ["DriftOptions", "build_drift", "check", "parse"]
