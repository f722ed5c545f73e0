"""bench.learning_delay: the lag simulation behind the learning benchmark's reading."""

import numpy as np

from bench.learning import synthetic
from bench.learning_delay import delayed


def test_rewarded_decisions_learned_as_late_as_the_others_change_nothing():
    env = synthetic(400)
    assert np.array_equal(delayed(env, 0, 40, final_after=40), delayed(env, 0, 40))


def test_learning_the_rewarded_decisions_sooner_changes_what_is_served():
    env = synthetic(400)
    late, early = delayed(env, 0, 120), delayed(env, 0, 120, final_after=10)
    assert np.array_equal(late[:11], early[:11])  # nothing learned yet in either
    assert not np.array_equal(late, early)
