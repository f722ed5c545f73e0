"""Log formats: JSON Lines and DSJson parsing, rendering, and the round trip through VW."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import vowpalwabbit

from experiments.logio import dsjson, jsonl, reader
from experiments.logio.records import ActionChecker, LineError, parse_timestamp

GOOD = {"event_id": "e-1", "timestamp": "2019-11-24 00:03:13.442536+00:00",
        "context": {"user": {"segment": "new"}, "position": 3, "tags": ["a", "b"]},
        "actions": ["0", "1", "2"], "chosen": "1", "propensity": 0.25, "reward": 1.0}

PERSONALIZER = {
    "_label_cost": -1, "_label_probability": 0.8, "_label_Action": 2, "_labelIndex": 1,
    "o": [{"v": 1.0, "EventId": "13c3", "ActionTaken": False}],
    "Timestamp": "2019-08-13T20:40:28.7880000Z", "Version": "1", "EventId": "13c3",
    "a": [2, 1, 3], "p": [0.8, 0.1, 0.1],
    "c": {"User": [{"tier": "pro"}, {"geo": "UK"}], "_synthetic": False,
          "_multi": [{"_tag": "news", "i": {"constant": 1, "id": "news"}},
                     {"_tag": "sports", "Topic": {"kind": "sports", "score": [0.5, 2.0]}},
                     {"_tag": "music"}]},
    "VWState": {"m": "N/A"}}


def parse_jsonl(obj: dict, line: int = 1):
    return jsonl.parse(obj, line, ActionChecker())


def test_jsonl_line_becomes_a_record() -> None:
    record = parse_jsonl(GOOD)
    assert record.event_id == "e-1"
    assert record.timestamp == pytest.approx(1574553793.442536)
    assert record.actions == [{"id": a, "features": {}} for a in "012"]
    assert (record.chosen_index, record.propensity, record.reward) == (1, 0.25, 1.0)
    assert record.pmf is None


def test_jsonl_full_pmf_as_object_or_list() -> None:
    as_object = parse_jsonl({**GOOD, "pmf": {"0": 0.5, "1": 0.25, "2": 0.25}})
    as_list = parse_jsonl({**GOOD, "pmf": [0.5, 0.25, 0.25]})
    assert as_object.pmf == as_list.pmf == [0.5, 0.25, 0.25]


BAD_LINES = [
    ({**GOOD, "event_id": ""}, "event_id"),
    ({**GOOD, "actions": []}, "actions must be a non-empty list"),
    ({**GOOD, "actions": ["0", "0"]}, "duplicate action id"),
    ({**GOOD, "chosen": "9"}, "chosen '9' is not one of the offered actions"),
    ({**GOOD, "propensity": 0}, "propensity must be a number in (0, 1]"),
    ({**GOOD, "propensity": 1.5}, "propensity must be a number in (0, 1]"),
    ({**GOOD, "reward": "click"}, "reward must be a finite number"),
    ({**GOOD, "timestamp": "yesterday"}, "not ISO 8601"),
    ({**GOOD, "context": {"a": {"b": {"c": 1}}}}, "nested one level only"),
    ({**GOOD, "context": {"n": float("inf")}}, "context.n"),
    ({**GOOD, "pmf": [0.5, 0.5, 0.5]}, "pmf sums to 1.5"),
    ({**GOOD, "pmf": {"0": 0.5, "1": 0.5}}, "but the propensity is 0.25"),
    ({**GOOD, "pmf": {"7": 1.0}}, "pmf names action '7'"),
    (["not", "an", "object"], "must be a JSON object"),
]


@pytest.mark.parametrize(("obj", "message"), BAD_LINES)
def test_jsonl_bad_lines_name_line_and_problem(obj, message: str) -> None:
    with pytest.raises(LineError) as caught:
        parse_jsonl(obj, line=17)
    assert str(caught.value).startswith("line 17: ")
    assert message in str(caught.value)


def test_timestamps_with_seven_fraction_digits_and_epoch_seconds() -> None:
    assert parse_timestamp("2019-08-13T20:40:28.7880000Z", 1) == pytest.approx(1565728828.788)
    assert parse_timestamp(1565728828.5, 1) == 1565728828.5
    assert parse_timestamp("2019-08-13T20:40:28", 1) == 1565728828.0  # naive means UTC


def test_personalizer_dsjson_line_becomes_a_record() -> None:
    record = dsjson.parse(PERSONALIZER, 3, ActionChecker())
    assert record.event_id == "13c3"
    assert [a["id"] for a in record.actions] == ["news", "sports", "music"]
    assert record.actions[0]["features"] == {"i": {"constant": 1, "id": "news"}}
    assert record.actions[1]["features"] == {"Topic": {"kind": "sports", "score[0]": 0.5,
                                                       "score[1]": 2.0}}
    assert record.context == {"User": {"tier": "pro", "geo": "UK"}}
    assert (record.chosen_index, record.propensity, record.reward) == (1, 0.8, 1.0)
    assert record.pmf == [0.1, 0.8, 0.1]  # p follows a = [2, 1, 3]


def test_dsjson_skip_learn_is_not_a_decision_and_missing_multi_is_an_error() -> None:
    assert dsjson.parse({**PERSONALIZER, "_skipLearn": True}, 1, ActionChecker()) is None
    with pytest.raises(LineError, match="line 4: not a cb_explore_adf decision"):
        dsjson.parse({"EventId": "x", "RewardValue": 1.0}, 4, ActionChecker())


def rendered(pmf=(0.2, 0.7, 0.1), reward: float = 2.5) -> dict:
    return dsjson.render(
        event_id="e-9", timestamp=1700000000.25,
        context={"hour": 14, "user": {"segment": "new", "vip": True}, "tags": ["x", "y"]},
        actions=[{"id": "hero-1", "features": {"price": 49.0}}, {"id": "hero-2", "features": {}},
                 {"id": "hero-3", "features": {"meta": {"kind": "hat"}}}],
        chosen_index=1, propensity=0.7, pmf=None if pmf is None else list(pmf), reward=reward,
        extra={"arm": "bandit"})


def test_rendered_dsjson_is_read_by_vw_with_the_right_label() -> None:
    line = json.dumps(rendered())
    workspace = vowpalwabbit.Workspace("--cb_explore_adf --dsjson --quiet")
    try:
        examples = workspace.parse(line)
        assert len(examples) == 4  # shared + 3 actions
        costs = [e.get_label().costs for e in examples[1:]]
        assert costs[0] == [] and costs[2] == []
        assert (costs[1][0].cost, costs[1][0].probability) == (-2.5, pytest.approx(0.7))
        workspace.learn(examples)
        workspace.finish_example(examples)
    finally:
        workspace.finish()


def test_render_then_parse_keeps_the_decision() -> None:
    back = dsjson.parse(rendered(), 1, ActionChecker())
    assert back.event_id == "e-9" and back.timestamp == pytest.approx(1700000000.25)
    assert [a["id"] for a in back.actions] == ["hero-1", "hero-2", "hero-3"]
    assert back.actions[2]["features"] == {"meta": {"kind": "hat"}}
    assert (back.chosen_index, back.propensity, back.reward) == (1, 0.7, 2.5)
    assert back.pmf == [0.2, 0.7, 0.1]
    # Lists of strings become numeric features (VW's JSON reader has no string lists).
    assert back.context == {"hour": 14, "user": {"segment": "new", "vip": True},
                            "tags=x": 1, "tags=y": 1}
    assert dsjson.parse(rendered(pmf=None), 1, ActionChecker()).pmf is None


def test_reader_detects_gzip_and_format_and_scans_every_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl.gz"
    lines = [json.dumps(GOOD), "{oops", "", json.dumps({**GOOD, "event_id": "e-2",
                                                        "chosen": "x"})]
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    assert reader.resolve_format(path, "auto") == "jsonl"
    found = reader.scan(path, "jsonl")
    assert (found.lines, found.invalid) == (3, {2, 4})
    assert found.messages[0].startswith("line 2: not valid JSON")
    records = list(reader.read(path, "jsonl", skip=found.invalid))
    assert [(line, r.event_id) for line, r in records] == [(1, "e-1")]
    ds = tmp_path / "log.dsjson"
    ds.write_text(json.dumps(PERSONALIZER) + "\n")
    assert reader.resolve_format(ds, "auto") == "dsjson"
