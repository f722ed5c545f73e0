"""OPE reports over the decision log: candidates versus the champion, and bandit health.

- ``scope``: which decisions a report reads, streamed in chunks.
- ``candidates``: candidate names (model, uniform, fixed, pmf, vw) and their pmfs.
- ``supplied``: ``pmf:<name>`` candidates from analysts' files (``tailor candidates add``).
- ``replay``: ``vw:`` candidates replayed over the log with progressive validation.
- ``qmodel``: the cross-fitted reward model of DM and DR.
- ``evaluation``/``report``: the report itself (``GET .../reports/ope``), stored per run.
- ``health``: bandit SRM and reward-join health (``GET .../reports/health``).

The estimators are :mod:`experiments.ope`; nothing here re-implements them.
"""

from experiments.ope_report.health import health_report
from experiments.ope_report.options import ESTIMATORS, INTERVALS, OpeOptions, parse_options
from experiments.ope_report.report import build_report, default_candidates, stored

__all__ = ["ESTIMATORS", "INTERVALS", "OpeOptions", "build_report", "default_candidates",
           "health_report", "parse_options", "stored"]
