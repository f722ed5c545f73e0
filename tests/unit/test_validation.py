"""Pure validation of experiment configurations."""

import pytest

from experiments.errors import ValidationFailed
from experiments.validation import implied_reward_range, validate_new, validate_patch


def rule(events, aggregation="sum", default=0.0):
    return {"events": events, "aggregation": aggregation, "default": default}


@pytest.mark.parametrize("reward, expected", [
    (rule({"click": 1.0}), [0.0, 1.0]),
    (rule({"click": 1.0, "like": 2.0}), [0.0, 3.0]),
    (rule({"click": 1.0, "like": 2.0}, "max"), [0.0, 2.0]),
    (rule({"complaint": -1.0}, "sum"), [-1.0, 0.0]),
    (rule({"purchase": "value"}), None),
    (rule({"nothing": 0.0}), None),
])
def test_implied_reward_range(reward, expected):
    assert implied_reward_range(reward) == expected


def test_reward_range_follows_rule_unless_given():
    config = validate_new({"key": "k", "reward": {"events": {"click": 1.0, "cart": 2.0}}})
    assert config["learner"]["params"]["reward_range"] == [0.0, 3.0]
    given = validate_new({"key": "k", "reward": {"events": {"click": 1.0}},
                          "learner": {"exploration": "regcb",
                                      "params": {"reward_range": [0, 10]}}})
    assert given["learner"]["params"]["reward_range"] == [0, 10]


def test_patch_revalidates_everything():
    config = validate_new({"key": "k", "actions": [{"id": "a"}, {"id": "b"}],
                           "champion": {"type": "fixed", "action_id": "a"}})
    with pytest.raises(ValidationFailed) as caught:
        validate_patch(config, {"actions": [{"id": "b"}]})  # removes the champion's action
    assert caught.value.details[0]["field"] == "champion.action_id"
    assert validate_patch(config, {"status": "paused"})["status"] == "paused"
