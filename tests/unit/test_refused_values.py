"""A value the database refuses is a 400 saying what was refused (app.errors.failure):
the NUL message only for a NUL, the database's own reason otherwise."""

from __future__ import annotations

import psycopg
import psycopg.errors
from sqlalchemy.exc import DataError

from app.errors import failure


def _refused(orig: Exception):
    return failure(DataError("SELECT 1", {}, orig))


def test_a_nul_in_text_is_named():
    found = _refused(psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"))
    assert (found.status, found.code) == (400, "invalid_value")
    assert "NUL" in found.message


def test_an_overflow_is_not_called_a_nul():
    found = _refused(psycopg.errors.NumericValueOutOfRange("value out of range: overflow"))
    assert (found.status, found.code) == (400, "invalid_value")
    assert "NUL" not in found.message
    assert found.message.endswith("value out of range: overflow")
