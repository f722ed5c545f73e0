"""The learning-policy string is untrusted: only allow-listed learning options are read, and
VW's command line is rebuilt by Tailor from validated settings (hypothesis feeds random
argument strings)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandits.exploration import ExplorationError, vw_arguments
from bandits.policy_arguments import OPTIONS, parse_policy

# What VW is ever given: the options vw_arguments writes.
WRITTEN = {"--cb_explore_adf", "--quiet", "--epsilon", "--squarecb", "--gamma_scale",
           "--gamma_exponent", "--softmax", "--lambda", "--bag", "--cover", "--psi",
           "--regcb", "--mellowness", "--learning_rate", "--power_t", "--l2",
           "--bit_precision", "--random_seed", "--cb_min_cost", "--cb_max_cost", "--cb_type",
           "--interactions"}
DANGEROUS = ["-f", "-d", "-i", "--daemon", "--cache_file", "--readable_model",
             "--invert_hash", "-p", "--port", "--data", "--final_regressor",
             "--initial_regressor", "-c", "--cache", "--pid_file", "--audit_regressor",
             "--save_resume", "--output_feature_regularizer_text", "--dsjson"]
WORDS = [*OPTIONS, *DANGEROUS, "0", "0.2", "1", "3", "-1", "1e9", "nan", "inf", "ca", "::",
         "c:", "mtr", "ips", "dr", "/tmp/model", "../../etc/passwd", "x=y", "--epsilon=0.1",
         "-q=ca", "", "18", "2"]


def flags(command: str) -> set[str]:
    return {word for word in command.split() if word.startswith("-") and not _numeric(word)}


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=12)), max_size=12))
def test_nothing_outside_the_allow_list_reaches_vw(words):
    arguments = " ".join(words)
    try:
        exploration, params = parse_policy(arguments)
    except ExplorationError:
        return
    given_options = {w.partition("=")[0] for w in arguments.split() if w.startswith("-")
                     and not _numeric(w)}
    assert given_options <= set(OPTIONS)
    command = vw_arguments(exploration, params)
    assert flags(command) <= WRITTEN, command
    assert not any(word in command.split() for word in DANGEROUS)


def _numeric(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("option", DANGEROUS)
def test_file_port_and_data_options_are_refused(option):
    with pytest.raises(ExplorationError, match="not an allowed learning option"):
        parse_policy(f"--cb_explore_adf --epsilon 0.1 {option} /tmp/x")


PERSONALIZER_DEFAULT = "--cb_explore_adf --epsilon 0.2 --power_t 0 -l 0.001 --cb_type mtr -q ::"


@pytest.mark.parametrize(("arguments", "exploration", "expected"), [
    (PERSONALIZER_DEFAULT, "epsilon",
     {"epsilon": 0.2, "power_t": 0.0, "learning_rate": 0.001, "cb_type": "mtr",
      "interactions": ["ca"]}),
    ("--cb_explore_adf --squarecb --gamma_scale 20", "squarecb", {"gamma_scale": 20.0}),
    ("--bag=5 --epsilon 0.05 -b 20", "bag", {"bag": 5, "epsilon": 0.05, "bits": 20}),
    ("--cover 3 --psi 0.5 --cubic cca", "cover", {"cover": 3, "psi": 0.5,
                                                  "interactions": ["cca"]}),
])
def test_learning_options_are_read(arguments, exploration, expected):
    assert parse_policy(arguments) == (exploration, expected)


@pytest.mark.parametrize("arguments", [
    "--epsilon", "--epsilon x", "--epsilon 2", "--squarecb --softmax", "-q UA",
    "--squarecb --epsilon 0.1", "--bag 2.5", "--epsilon nan", "--quiet=1", "x" * 1025,
])
def test_bad_values_are_refused(arguments):
    with pytest.raises(ExplorationError):
        parse_policy(arguments)
