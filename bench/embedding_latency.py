"""What a declared `embedding` field costs at rank time (needs the embeddings extra).

Prints a table: loading the model (first use in a worker), embedding a text the worker has
not seen (a cache miss, by length), a cache hit, and encoding a context whose field is
already embedded (384 dense features on the shared line) next to the same text declared
`text`, and a profile field whose vector was stored by its write (what rank does for
profiles: no model, no cache). Medians over distinct texts, CPU time of this process (the
machine may be shared).

    .venv/bin/python -m bench.embedding_latency
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from bandits import embeddings
from bandits.features import feature_types, shared_line

WORDS = ("river mountain quiet morning coffee train ticket window garden letter music "
         "winter orange market bridge candle story harbor lantern meadow").split()


def _text(index: int, words: int) -> str:
    return " ".join(WORDS[(index * 7 + j * 3) % len(WORDS)] for j in range(words)) + f" {index}"


def _cpu_ms(call: Callable[[], object]) -> float:
    started = time.process_time()
    call()
    return (time.process_time() - started) * 1000


def _median(calls: list[Callable[[], object]]) -> float:
    return statistics.median(_cpu_ms(call) for call in calls)


def main() -> None:
    if not embeddings.available():
        raise SystemExit(embeddings.INSTALL_HINT)
    rows = [("load the model and embed one text (first use in a worker)",
             _cpu_ms(lambda: embeddings.embed("first text")))]
    for words, count in ((3, 50), (20, 30), (200, 10)):
        texts = [_text(1000 * words + i, words) for i in range(count)]
        rows.append((f"cache miss: a new {words}-word text ({count} texts)",
                     _median([lambda t=t: embeddings.embed(t) for t in texts])))
    rows.append(("cache hit (10,000 calls, per call)",
                 _cpu_ms(lambda: [embeddings.embed("first text") for _ in range(10_000)])
                 / 10_000))
    for kind in ("embedding", "text"):
        types = feature_types({"query": kind})
        context = {"query": _text(7, 20), "device": "mobile"}
        cached = " (its embedding cached)" if kind == "embedding" else ""
        rows.append((f"encode the shared line, one 20-word field declared {kind}{cached} "
                     "(1,000 calls, per call)",
                     _cpu_ms(lambda types=types, c=context: [shared_line(c, types)
                                                           for _ in range(1000)]) / 1000))
    stored_text = _text(8, 20)
    stored = {"profile": {"bio": embeddings.Embedded(stored_text,
                                                     embeddings.embed(stored_text))}}
    embeddings.embed.cache_clear()  # the stored vector is used, not the cache
    types = feature_types({"profile.bio": "embedding"})
    rows.append(("encode the shared line, a profile's 20-word embedding field with its "
                 "stored vector (1,000 calls, per call; no model, no cache)",
                 _cpu_ms(lambda: [shared_line(stored, types) for _ in range(1000)]) / 1000))
    assert embeddings.embed.cache_info().misses == 0
    print("| step | CPU ms |\n| --- | ---: |")
    for label, value in rows:
        print(f"| {label} | {value:.4f} |")


if __name__ == "__main__":
    main()
