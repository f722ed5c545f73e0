"""The fairness report: reward and action exposure per value of a context attribute, tests
of disparity, and a counterfactual audit of the current model (docs/fairness.md)."""

from experiments.fairness.options import FairnessOptions, parse_options
from experiments.fairness.report import build_fairness

__all__ = ["FairnessOptions", "build_fairness", "parse_options"]
