"""bench.learning's profile environments: the three variants share one stream and differ
only in what reaches the service (stored profiles merged, the same features inline, or
neither)."""

from __future__ import annotations

import numpy as np

from bench import learning_envs


def test_the_profile_variants_share_the_stream_and_differ_in_what_the_service_sees():
    merged = learning_envs.profiles(50)
    inline = learning_envs.profiles(50, sent_inline=True)
    off = learning_envs.profiles(50, merged=False)
    assert [e.name for e in (merged, inline, off)] == ["profiles", "profiles-inline",
                                                       "profiles-off"]
    for env in (inline, off):
        assert env.contexts == merged.contexts and env.units == merged.units
        assert np.array_equal(env.probabilities, merged.probabilities)
    assert merged.sent is not None and all(set(s) == {"device"} for s in merged.sent)
    assert merged.profiles is not None and "profile" in merged.settings
    assert inline.sent == merged.contexts and inline.profiles is None
    assert "profile" not in inline.settings and "profile" not in off.settings
    assert inline.sent is not None and inline.sent[0]["profile"] == \
        merged.profiles[merged.units[0]]
    assert off.profiles is None and off.sent == merged.sent
