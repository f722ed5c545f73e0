"""Off-policy evaluation (OPE): pure, streaming estimators over numpy arrays.

Inputs (:class:`LoggedBatch`), streaming estimators (IPS, SNIPS, DM, DR, SwitchDR,
DR-os) with analytic, Poisson-bootstrap and anytime-valid intervals, the paired difference
against a champion with its verdict, importance-weight diagnostics, and a cross-fitted
hashed-feature reward model for DM/DR. Given each decision's unit, variances are
cluster-robust by unit and the bootstrap resamples units (:mod:`experiments.ope.units`).
No Flask, no database.
"""

from experiments.ope.bootstrap import PoissonBootstrap
from experiments.ope.crossfit import (
    CrossFit,
    EncodedLog,
    chosen_design,
    cross_fit_q_hat,
    hash_folds,
    predict_q_hat,
    random_folds,
)
from experiments.ope.diagnostics import WeightDiagnostics
from experiments.ope.estimators import (
    DM,
    DR,
    DROS,
    IPS,
    SNIPS,
    RatioEstimator,
    SwitchDR,
    estimate_from_moments,
)
from experiments.ope.featurize import EncodedActions, HashedRows, HashingFeaturizer
from experiments.ope.inputs import LoggedBatch
from experiments.ope.moments import Moments
from experiments.ope.paired import PairedDifference
from experiments.ope.results import (
    Estimate,
    Interval,
    Status,
    Verdict,
    difference_to_dict,
    verdict,
)
from experiments.ope.reward_model import RewardModel, RewardModelConfig, fit_reward_model
from experiments.ope.sequences import asymptotic_confidence_sequence
from experiments.ope.units import UnitCodes, UnitSums, unit_sums

__all__ = [
    "DM",
    "DR",
    "DROS",
    "IPS",
    "SNIPS",
    "CrossFit",
    "EncodedActions",
    "EncodedLog",
    "Estimate",
    "HashedRows",
    "HashingFeaturizer",
    "Interval",
    "LoggedBatch",
    "Moments",
    "PairedDifference",
    "PoissonBootstrap",
    "RatioEstimator",
    "RewardModel",
    "RewardModelConfig",
    "Status",
    "SwitchDR",
    "UnitCodes",
    "UnitSums",
    "Verdict",
    "WeightDiagnostics",
    "asymptotic_confidence_sequence",
    "chosen_design",
    "cross_fit_q_hat",
    "difference_to_dict",
    "estimate_from_moments",
    "fit_reward_model",
    "hash_folds",
    "predict_q_hat",
    "random_folds",
    "unit_sums",
    "verdict",
]
