"""Canonical JSON of a request, for its idempotency fingerprint.

The fingerprint of a rank body is the SHA-256 of its canonical JSON: keys sorted, no
spaces, non-ASCII escaped, as `json.dumps(value, sort_keys=True, separators=(",", ":"))`
writes it. Stored fingerprints were made that way, so it must stay byte for byte the same
(a retry that spans an upgrade must still match). orjson writes the same bytes ~10x
faster except for non-ASCII text and DEL (which it does not escape), floats below 1e-4 (`0.00001`
and `1.5e-7` where Python writes `1e-05` and `1.5e-07`) and integers beyond 64 bits
(which it refuses): those, and anything that merely looks like them (`e-` or `.0000`
anywhere), take the standard library's path. tests/unit/test_fingerprint.py holds both
to the same output.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def canonical(value: Any) -> str:
    """`json.dumps(value, sort_keys=True, separators=(",", ":"))`, fast when it can be."""
    try:
        fast = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer beyond 64 bits, or a value orjson does not take
        return _standard(value)
    if not fast.isascii() or b"e-" in fast or b".0000" in fast or b"\x7f" in fast:
        return _standard(value)
    return fast.decode()


def _standard(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
