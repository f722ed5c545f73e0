"""The PII guard (experiments.pii): which fields are personal, and what happens to them."""

from __future__ import annotations

import pytest

from experiments import pii
from experiments.errors import Unprocessable

SALT = "s" * 64


def config(fields=(), mode="hash", unit_field=None):
    return {"pii_fields": list(fields), "pii_mode": mode, "unit_field": unit_field}


def guarded(context, fields=(), mode="hash", unit=None, unit_field=None, defaults=()):
    return pii.guard(context, unit, config(fields, mode, unit_field), SALT, defaults=defaults)


def test_keyed_hash_is_stable_keyed_and_idempotent():
    first = pii.keyed_hash(SALT, "jane@example.com")
    assert first == pii.keyed_hash(SALT, "jane@example.com")
    assert first.startswith("pii:") and len(first) == 36
    assert first != pii.keyed_hash("t" * 64, "jane@example.com")  # other team, other hash
    assert pii.keyed_hash(SALT, first) == first


@pytest.mark.parametrize("fields, context, hashed_path", [
    (["email"], {"email": "a@b.io"}, ("email",)),
    (["email"], {"user": {"email": "a@b.io"}}, ("user", "email")),  # bare name: any namespace
    (["user.email"], {"user": {"email": "a@b.io"}}, ("user", "email")),
    (["E-Mail"], {"eMail": "a@b.io"}, ("eMail",)),  # case and punctuation do not matter
    (["card_number"], {"cardNumber": "x"}, ("cardNumber",)),
    (["address"], {"address": {"street": "Main 1"}}, ("address", "street")),  # whole namespace
])
def test_declared_fields_are_hashed(fields, context, hashed_path):
    result = guarded(context, fields).context
    value = result
    for part in hashed_path:
        value = value[part]
    assert pii.is_hashed(value)


def test_dotted_path_matches_only_there():
    result = guarded({"email": "plain", "user": {"email": "x"}}, ["user.email"]).context
    assert result["email"] == "plain" and pii.is_hashed(result["user"]["email"])


def test_lists_are_hashed_item_by_item_and_input_is_not_modified():
    context = {"phones": ["123", "456"], "n": 3}
    result = guarded(context, ["phones"]).context
    assert all(pii.is_hashed(v) for v in result["phones"]) and result["n"] == 3
    assert context == {"phones": ["123", "456"], "n": 3}


def test_service_defaults_apply_and_are_configurable():
    assert pii.is_hashed(guarded({"email": "x"}, defaults=pii.DEFAULT_FIELDS).context["email"])
    assert guarded({"email": "x"}, defaults=()).context["email"] == "x"
    token = pii.use_default_fields(frozenset({"nickname"}))
    try:
        result = pii.guard({"nickname": "jo", "email": "x"}, None, config(), SALT)
    finally:
        pii.reset_default_fields(token)
    assert pii.is_hashed(result.context["nickname"]) and result.context["email"] == "x"


@pytest.mark.parametrize("context, field", [
    ({"email": "a@b.io"}, "context.email"),
    ({"user": {"email": "a@b.io"}}, "context.user.email"),
])
def test_reject_mode_names_the_field(context, field):
    with pytest.raises(Unprocessable) as caught:
        guarded(context, ["email"], mode="reject")
    assert caught.value.details[0]["field"] == field
    assert "a@b.io" not in caught.value.message


@pytest.mark.parametrize("value, kind", [
    ("jane.doe+news@example.co.uk", "email"),
    ("write to jane@example.com today", "email"),
    ("4111 1111 1111 1111", "card_number"),
    ("4111-1111-1111-1111", "card_number"),
    (4111111111111111, "card_number"),
    ("378282246310005", "card_number"),
    ("paid with 5555555555554444.", "card_number"),
])
def test_detector_flags(value, kind):
    assert pii.looks_personal(value) == kind


@pytest.mark.parametrize("value", [
    "4111111111111112",  # Luhn fails
    1700000000000, "1700000000000123",  # millisecond timestamps, snowflake-like ids
    "123456789012", "no at sign", "a@b", True, 3.5, None, ["a@b.io"],
    "order-2024-0001-0002-0003",
])
def test_detector_leaves_alone(value):
    assert pii.looks_personal(value) is None


def test_luhn():
    assert pii.luhn_valid("79927398713") and not pii.luhn_valid("79927398710")


def test_undeclared_personal_values_are_hashed_with_warnings_in_hash_mode():
    result = guarded({"note": "mail me: a@b.io", "tags": ["x", "4111111111111111"],
                      "user": {"contact": "c@d.io"}, "ok": "fine"})
    assert pii.is_hashed(result.context["note"]) and result.context["ok"] == "fine"
    assert result.context["tags"][0] == "x" and pii.is_hashed(result.context["tags"][1])
    assert pii.is_hashed(result.context["user"]["contact"])
    fields = [w["field"] for w in result.warnings]
    assert fields == ["context.note", "context.tags[1]", "context.user.contact"]
    assert all(w["code"] == "pii_detected" for w in result.warnings)
    assert "a@b.io" not in str(result.warnings)


def test_undeclared_personal_values_are_rejected_in_reject_mode():
    with pytest.raises(Unprocessable) as caught:
        guarded({"note": "a@b.io"}, mode="reject")
    assert caught.value.details[0]["field"] == "context.note"


def test_a_key_that_is_an_email_is_hashed_too():
    result = guarded({"seen": {"a@b.io": 1}})
    (key,) = result.context["seen"]
    assert pii.is_hashed(key) and result.warnings


def test_unit_is_hashed_when_its_field_is_personal_or_it_looks_personal():
    assert pii.is_hashed(guarded({}, ["email"], unit="a@b.io", unit_field="email").unit)
    assert pii.is_hashed(guarded({}, unit="a@b.io", unit_field="user_id").unit)
    assert guarded({}, unit="u-1", unit_field="user_id").unit == "u-1"
    # Reject mode still hashes the unit: assignment needs it.
    assert pii.is_hashed(guarded({}, ["user_id"], mode="reject", unit="u-1",
                                 unit_field="user_id").unit)


def test_stored_unit_matches_what_guard_stores():
    conf = config(["user_id"], unit_field="user_id")
    stored = pii.guard({}, "u-1", conf, SALT, defaults=()).unit
    assert pii.stored_unit(conf, SALT, "u-1", defaults=()) == stored
    assert pii.stored_unit(conf, SALT, stored, defaults=()) == stored  # already hashed
    assert pii.stored_unit(config(unit_field="user_id"), SALT, "u-1", defaults=()) == "u-1"


def test_declared_field_hashed_others_kept():
    result = pii.guard({"email": "a@b.io", "x": 1}, None, config(["email"]), SALT).context
    assert pii.is_hashed(result["email"]) and result["x"] == 1


def test_parse_field_list():
    assert pii.parse_field_list(" email, phone ,,") == {"email", "phone"}
    assert pii.parse_field_list("") == frozenset() and pii.parse_field_list(None) == frozenset()
