"""Embed stored text (profiles, catalog actions) when it is written, not when rank reads it.

Catalog actions: registration (and a catalog change) validates every action through the
encoder, which embeds its declared `embedding` fields then; each gunicorn worker embeds
the catalogs again when it starts (`warm_catalogs`, app/gunicorn_hooks.py), before it
serves, and loads the model there if any experiment declares an `embedding` field.

Profiles: a profile field is embedded by rank when an experiment of the team merges profiles into a
namespace (its `profile` setting) and declares that field `embedding` in `feature_types`
(``"profile.bio": "embedding"``). A profile write computes those embeddings right after it
commits, so they sit in the writing worker's cache (`bandits.embeddings`) before the next
rank; nothing is embedded without the optional extra.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bandits import embeddings
from bandits.features import EMBEDDING, FeatureError, feature_types
from experiments.models import Experiment


def declared_fields(configs: Iterable[Mapping[str, Any]]) -> set[str]:
    """Profile keys that some experiment (config) merges and declares `embedding`."""
    keys: set[str] = set()
    for config in configs:
        setting = config.get("profile")
        declared = config.get("feature_types") or {}
        if not isinstance(setting, Mapping) or not isinstance(declared, Mapping):
            continue
        prefix = f"{setting.get('namespace')}."
        keys.update(path[len(prefix):] for path, kind in declared.items()
                    if kind == EMBEDDING and isinstance(path, str) and path.startswith(prefix))
    return keys


def warm(session: Session, team_id: int, profiles: Iterable[Mapping[str, Any]]) -> int:
    """Embed the written profiles' declared `embedding` fields now; the count embedded."""
    if not embeddings.available():
        return 0
    configs = session.scalars(sa.select(Experiment.config).where(
        Experiment.team_id == team_id)).all()
    keys = declared_fields(configs)
    texts = [value for features in profiles for key, value in features.items()
             if key in keys and isinstance(value, str) and value.strip()]
    embeddings.warm(texts)
    return len(texts)


def catalog_texts(config: Mapping[str, Any]) -> list[str]:
    """The texts of a catalog's declared `embedding` action fields."""
    declared = config.get("feature_types")
    if not declared or EMBEDDING not in declared.values():
        return []
    try:
        kinds = feature_types(declared).action
    except FeatureError:
        return []
    texts = []
    for action in config.get("actions") or []:
        features = action.get("features") or {}
        for (namespace, key), kind in kinds.items():
            where = features.get(namespace) if namespace else features
            value = where.get(key) if isinstance(where, Mapping) else None
            if kind == EMBEDDING and isinstance(value, str) and value.strip():
                texts.append(value)
    return texts


def warm_catalogs(session: Session) -> int:
    """Load the model and embed every catalog's declared `embedding` fields (a worker's
    start), when some experiment declares an `embedding` field; the count embedded."""
    if not embeddings.available():
        return 0
    configs = session.scalars(sa.select(Experiment.config)).all()
    if not any(EMBEDDING in (c.get("feature_types") or {}).values() for c in configs):
        return 0
    texts = [text for config in configs for text in catalog_texts(config)]
    embeddings.warm(texts or [" "])
    return len(texts)
