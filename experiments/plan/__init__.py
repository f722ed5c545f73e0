"""Experiment planning (`POST /v1/plan`): decisions and days until an A/B comparison and an
OPE estimate reach a confidence-interval half-width. See docs/plan.md."""

from experiments.plan.request import PlanRequest, parse
from experiments.plan.service import Plan, plan

__all__ = ["Plan", "PlanRequest", "parse", "plan"]
