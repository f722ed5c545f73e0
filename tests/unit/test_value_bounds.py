"""experiments.value_bounds: the numpy and SQL forms agree, and the docstring examples run."""

from __future__ import annotations

import doctest

import numpy as np
import sqlalchemy as sa

from experiments import value_bounds
from experiments.value_bounds import VALUE_BOUND, beyond, bounded, bounded_array

VALUES = [1e300, -1e300, 1e51, VALUE_BOUND, 2e-51, -3e-300, 0.0, -0.0, 1e-49, 12.5, -7.0]


def test_docstring_examples_run() -> None:
    assert doctest.testmod(value_bounds).failed == 0


def test_the_sql_form_counts_as_the_numpy_form_does() -> None:
    engine = sa.create_engine("sqlite://")
    with engine.connect() as conn:
        sql = [conn.execute(sa.select(bounded(sa.literal(v, sa.Float)))).scalar_one()
               for v in VALUES]
    engine.dispose()
    assert sql == bounded_array(np.array(VALUES)).tolist()
    assert max(abs(v) for v in sql) == VALUE_BOUND and sql[4] == sql[5] == 0.0


def test_only_values_at_or_beyond_the_bound_are_flagged() -> None:
    assert beyond(np.array([VALUE_BOUND])) and beyond(np.array([-1e300]))
    assert not beyond(np.array([1e49, 3e-300, 0.0]))
