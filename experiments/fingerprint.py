"""Canonical JSON of a request, for its idempotency fingerprint.

The fingerprint of a rank body is the SHA-256 of its canonical JSON: keys sorted, no
spaces, non-ASCII escaped, as `json.dumps(value, sort_keys=True, separators=(",", ":"))`
writes it. Stored fingerprints were made that way, so it must stay byte for byte the same
(a retry that spans an upgrade must still match). orjson writes the same bytes ~10x
faster except for non-ASCII text (which it does not escape), floats in exponent form
(`1e16` where Python writes `1e+16`) and integers beyond 64 bits (which it refuses):
those, and anything that merely looks like them, take the standard library's path.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_EXPONENT = re.compile(rb"\d[eE]")


def canonical(value: Any) -> str:
    """`json.dumps(value, sort_keys=True, separators=(",", ":"))`, fast when it can be."""
    try:
        fast = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer beyond 64 bits, or a value orjson does not take
        return _standard(value)
    if not fast.isascii() or _EXPONENT.search(fast) is not None:
        return _standard(value)
    return fast.decode()


def _standard(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
