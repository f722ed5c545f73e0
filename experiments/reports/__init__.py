"""Reports over the decision log: the A/B significance report (JSON, CSV).

``build_report(session, experiment, options)`` reads SQL aggregates (never one row per
decision) and analyses them with :mod:`experiments.abstats`; ``to_csv`` flattens it.
"""

from experiments.reports.ab import build_report
from experiments.reports.export import to_csv
from experiments.reports.options import ReportOptions, parse_options

__all__ = ["ReportOptions", "build_report", "parse_options", "to_csv"]
