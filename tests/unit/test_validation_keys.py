"""Unknown keys are refused at every level of an experiment body, with a suggestion."""

import pytest

from experiments.errors import ValidationFailed
from experiments.validation import KNOWN_KEYS, notes, validate_new, validate_patch

BASE = {"key": "k", "actions": [{"id": "a", "features": {"c": "1"}}, {"id": "b"}],
        "reward": {"events": {"click": 1.0}, "aggregation": "sum", "window_seconds": 60,
                   "default": 0.0},
        "learner": {"exploration": "squarecb",
                    "params": {"gamma_scale": 10, "reward_range": [0, 1]},
                    "mode": "online"},
        "champion": {"type": "fixed", "action_id": "a"}, "arms": {"bandit": 1.0},
        "unit_field": "user_id", "pii_fields": ["email"]}


def with_typo(path: list, bad: str, value=1):
    """BASE with the key at `path` (a list of keys/indexes into BASE) renamed to `bad`."""
    body = {k: (v.copy() if isinstance(v, dict) else v) for k, v in BASE.items()}
    body["actions"] = [dict(a) for a in BASE["actions"]]
    body["learner"] = {**BASE["learner"], "params": dict(BASE["learner"]["params"])}
    target = body
    for step in path[:-1]:
        target = target[step]
    target.pop(path[-1], None)
    target[bad] = value
    return body


# (where the real key is, the misspelling, the field named, the suggestion)
TYPOS = [
    (["unit_field"], "unitfield", "unitfield", "unit_field"),
    (["pii_fields"], "pii_field", "pii_field", "pii_fields"),
    (["reward", "window_seconds"], "window_second", "reward.window_second", "window_seconds"),
    (["reward", "aggregation"], "aggegation", "reward.aggegation", "aggregation"),
    (["reward", "default"], "defualt", "reward.defualt", "default"),
    (["reward", "events"], "event", "reward.event", "events"),
    (["learner", "exploration"], "explorations", "learner.explorations", "exploration"),
    (["learner", "params"], "param", "learner.param", "params"),
    (["learner", "mode"], "mod", "learner.mod", "mode"),
    (["learner", "params", "gamma_scale"], "gama_scale", "learner.params.gama_scale",
     "gamma_scale"),
    (["learner", "params", "reward_range"], "reward_ranges", "learner.params.reward_ranges",
     "reward_range"),
    (["champion", "action_id"], "actionid", "champion.actionid", "action_id"),
    (["actions", 0, "features"], "featurs", "actions[0].featurs", "features"),
    (["actions", 1, "id"], "ids", "actions[1].ids", "id"),
]


@pytest.mark.parametrize("path, bad, field, suggestion", TYPOS)
def test_misspelled_key_is_refused_with_its_path_and_suggestion(path, bad, field, suggestion):
    value = BASE
    for step in path:
        value = value[step]
    with pytest.raises(ValidationFailed) as caught:
        validate_new(with_typo(path, bad, value))
    detail = caught.value.details[0]
    assert detail["field"] == field
    assert f"did you mean `{suggestion}`?" in detail["message"]
    assert detail["suggestion"] == suggestion
    assert field in caught.value.message


@pytest.mark.parametrize("path, bad, field, suggestion",
                         [t for t in TYPOS if t[0][0] in ("learner", "actions")])
def test_patch_refuses_the_same_misspellings(path, bad, field, suggestion):
    config = validate_new(BASE)
    value = BASE
    for step in path:
        value = value[step]
    body = with_typo(path, bad, value)
    with pytest.raises(ValidationFailed) as caught:
        validate_patch(config, {path[0]: body[path[0]]})
    assert caught.value.details[0]["field"] == field
    assert caught.value.details[0]["suggestion"] == suggestion


def test_patch_top_level_typo_suggests_a_patchable_field():
    with pytest.raises(ValidationFailed) as caught:
        validate_patch(validate_new(BASE), {"staus": "paused"})
    assert caught.value.details[0] == {"field": "staus", "suggestion": "status",
                                       "message": "unknown field; did you mean `status`?"}


def test_a_parameter_of_another_preset_says_where_it_belongs():
    body = with_typo(["learner", "params", "gamma_scale"], "epsilon", 0.1)
    with pytest.raises(ValidationFailed) as caught:
        validate_new(body)
    assert caught.value.details[0]["field"] == "learner.params.epsilon"
    assert "belongs to bag, epsilon" in caught.value.details[0]["message"]


def test_nothing_close_lists_the_known_fields():
    with pytest.raises(ValidationFailed) as caught:
        validate_new({**BASE, "reward": {**BASE["reward"], "zzzz": 1}})
    assert "known fields: aggregation, default, events, window_seconds" in \
        caught.value.details[0]["message"]


def test_user_named_maps_are_not_checked():
    config = validate_new({**BASE, "reward": {"events": {"anything-goes": 1.0}},
                           "arms": {"bandit": 0.5, "fixed:a": 0.5},
                           "actions": [{"id": "a", "features": {"whatever": 1}}]})
    assert config["reward"]["events"] == {"anything-goes": 1.0}


def test_known_keys_cover_what_registration_stores():
    config = validate_new(BASE)
    assert set(config) <= KNOWN_KEYS[""] | {"key"}
    assert set(config["reward"]) <= KNOWN_KEYS["reward"]
    assert set(config["learner"]) <= KNOWN_KEYS["learner"]
    assert set(config["champion"]) <= KNOWN_KEYS["champion"]


def test_a_value_event_requires_an_explicit_reward_range():
    body = {**BASE, "reward": {"events": {"click": 1.0, "purchase": "value"}},
            "learner": {"exploration": "squarecb"}}
    with pytest.raises(ValidationFailed) as caught:
        validate_new(body)
    assert caught.value.details[0]["field"] == "learner.params.reward_range"
    assert "reward.events.purchase" in caught.value.details[0]["message"]
    given = {**body, "learner": {"exploration": "squarecb",
                                 "params": {"reward_range": [0, 500]}}}
    config = validate_new(given)
    assert config["learner"]["params"]["reward_range"] == [0.0, 500.0]
    assert "[0, 500]: as given" in notes(given, config)[0]["message"]


def test_the_default_reward_rule_keeps_the_default_range_and_says_so():
    body = {"key": "k"}
    config = validate_new(body)
    assert config["learner"]["params"]["reward_range"] == [0.0, 1.0]
    assert "[0, 1]: the default" in notes(body, config)[0]["message"]
    fixed = {"key": "k", "reward": {"events": {"click": 1.0, "cart": 2.0}}}
    assert "[0, 3]: derived" in notes(fixed, validate_new(fixed))[0]["message"]


def test_patching_the_learner_keeps_the_reward_range():
    given = {**BASE, "reward": {"events": {"purchase": "value"}},
             "learner": {"exploration": "squarecb", "params": {"reward_range": [0, 500]}}}
    config = validate_new(given)
    patched = validate_patch(config, {"learner": {"exploration": "epsilon"}})
    assert patched["learner"]["params"]["reward_range"] == [0.0, 500.0]
    assert patched["learner"]["exploration"] == "epsilon"


def test_a_new_level_is_one_table_entry(monkeypatch):
    from experiments import validation

    monkeypatch.setitem(validation.KNOWN_KEYS, "widget.sources[]", frozenset({"name"}))
    body = {"widget": {"sources": [{"name": "crm"}, {"nmae": "web"}]}}
    with pytest.raises(ValidationFailed) as caught:
        validation.check_known_keys(body, skip={""})
    assert caught.value.details[0]["field"] == "widget.sources[1].nmae"
    assert caught.value.details[0]["suggestion"] == "name"
    validation.check_known_keys({"widget": {"sources": "x"}}, skip={""})  # shape: elsewhere
