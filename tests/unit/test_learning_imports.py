"""Arguments accepted for an imported model: only the flags Tailor generates."""

from __future__ import annotations

import pytest

from bandits.exploration import EXPLORATIONS, vw_arguments
from experiments.errors import ValidationFailed
from experiments.learning.imports import check_arguments


@pytest.mark.parametrize("exploration", sorted(EXPLORATIONS))
def test_every_generated_argument_string_is_accepted(exploration: str) -> None:
    arguments = vw_arguments(exploration, {"cb_type": "ips", "l2": 0.001,
                                           "interactions": ["ca", "cca"]})
    assert check_arguments(arguments) == arguments


@pytest.mark.parametrize("arguments", [
    "--cb_explore_adf --bit_precision 18 -f /tmp/x",
    "--cb_explore_adf --bit_precision 18 --final_regressor /tmp/x",
    "--cb_explore_adf --bit_precision 18 -d /etc/passwd",
    "--cb_explore_adf --bit_precision 18 --daemon",
    "--cb_explore_adf --bit_precision 18 --epsilon",
    "--cb_explore_adf --bit_precision 18 --epsilon 1e",
    "--cb_explore_adf --bit_precision 18 --cb_type foo",
    "--cb_explore_adf --bit_precision 18 --interactions cx",
    "--cb_explore_adf --bit_precision 29",
    "--cb_explore_adf --bit_precision 18.5",
    "--cb_explore_adf",
    "--bit_precision 18",
    "",
])
def test_anything_else_is_rejected(arguments: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_arguments(arguments)
    assert caught.value.details[0]["field"] == "arguments"
