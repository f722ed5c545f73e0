"""Embed stored text (profiles, catalog actions) when it is written, not when rank reads it.

Catalog actions: registration (and every configuration change) embeds the catalog's
declared `embedding` fields and stores them (`catalog_embeddings`, per experiment: text →
vector; `store_catalog`); reading the experiment (`registry.get`, which rank's
experiment cache uses) hands them to the encoder as `embeddings.Embedded` text
(`attach_catalog`), so no worker runs the model for a catalog. Each gunicorn worker also
loads the model when it starts (`warm_catalogs`, app/gunicorn_hooks.py), before it serves,
if any experiment declares an `embedding` field (for text sent at rank time), and embeds
the catalogs into its cache (for catalogs registered before vectors were stored).

Profiles: a profile field is embedded when an experiment of the team merges profiles into
a namespace (its `profile` setting) and declares that field `embedding` in `feature_types`
(``"profile.bio": "embedding"``). The write (PUT, PATCH, batch) computes those vectors
before its upsert and stores them with the profile (`profiles.embeddings`, field →
vector; a PATCH reuses the stored vector of a text it did not change). Rank reads them
with the profile (the worker's `ProfileCache`, invalidated by writes) and hands them to
the encoder as `embeddings.Embedded` text (`attach`), so no worker runs the model for a
stored profile. Without the extra, a write that would need it is refused (400, naming
the field and how to install it). A profile written before an experiment declared the
field has no vector for it: rank embeds that text as it embeds text sent at rank time
(cached per worker) until the profile is written again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bandits import embeddings
from bandits.features import EMBEDDING, FeatureError, FeatureTypes
from experiments.config import ExperimentConfig
from experiments.errors import ValidationFailed
from experiments.models import CatalogEmbeddings, Experiment


def declared_fields(configs: Iterable[ExperimentConfig]) -> set[str]:
    """Profile keys that some experiment (config) merges and declares `embedding`."""
    keys: set[str] = set()
    for config in configs:
        if config.profile is None:
            continue
        prefix = f"{config.profile.namespace}."
        keys.update(path[len(prefix):] for path, kind in config.declared_types.items()
                    if kind == EMBEDDING and path.startswith(prefix))
    return keys


def profile_fields(session: Session, team_id: int) -> set[str]:
    """The profile keys the team's experiments declare `embedding`."""
    return declared_fields(e.settings for e in session.scalars(sa.select(Experiment).where(
        Experiment.team_id == team_id)))


def profile_vectors(keys: set[str], features: Mapping[str, Any], path: str,
                    known: Mapping[str, list[float]] | None = None,
                    ) -> dict[str, list[float]] | None:
    """The vectors of a written profile's `keys` fields (None: none to store).

    Args:
        features: the features as stored (PII-guarded).
        path: where the features sit in the request, for the error.
        known: text → vector already stored for this unit (a PATCH keeps them).

    Raises:
        ValidationFailed: a field needs embedding and the extra is not installed.
    """
    texts = {key: value for key, value in features.items()
             if key in keys and isinstance(value, str) and value.strip()}
    if not texts:
        return None
    if not embeddings.available():
        key = sorted(texts)[0]
        raise ValidationFailed.field(
            f"{path}.{key}", f"an experiment of this team declares this profile field "
                             f"embedding, and {embeddings.INSTALL_HINT}")
    known = known or {}
    return {key: known.get(text) or list(embeddings.embed(text))
            for key, text in texts.items()}


def attach(features: dict[str, Any], namespace: str, types: FeatureTypes,
           stored: Mapping[str, str], vectors: Mapping[str, list[float]] | None) -> None:
    """Replace (in place) each `embedding` field of a profile's prepared `features` that
    still holds its stored text by that text carrying its stored vector, so the encoder
    does not run the model (`bandits.features.embed_text`)."""
    if not vectors:
        return
    for key, vector in vectors.items():
        value = features.get(key)
        if (types.context.get((namespace, key)) == EMBEDDING and isinstance(value, str)
                and value == stored.get(key)):
            features[key] = embeddings.Embedded(value, tuple(vector))


def _catalog_fields(config: ExperimentConfig) -> Iterator[tuple[dict[str, Any], str]]:
    """(the features object holding it, key) of each non-empty declared `embedding`
    action field of the catalog."""
    if EMBEDDING not in config.declared_types.values():
        return
    try:
        kinds = config.types.action
    except FeatureError:
        return
    for action in config.actions or ():
        features = action.get("features") or {}
        for (namespace, key), kind in kinds.items():
            where = features.get(namespace) if namespace else features
            value = where.get(key) if isinstance(where, dict) else None
            if kind == EMBEDDING and isinstance(value, str) and value.strip():
                yield cast(dict[str, Any], where), key


def catalog_texts(config: ExperimentConfig) -> list[str]:
    """The texts of a catalog's declared `embedding` action fields."""
    return [where[key] for where, key in _catalog_fields(config)]


def catalog_vectors(config: ExperimentConfig, known: Mapping[str, list[float]] | None = None,
                    ) -> dict[str, list[float]] | None:
    """Text → vector of the catalog's `embedding` fields (`known`: the vectors stored so
    far, reused). None: nothing to store (or no extra: registration refused it)."""
    texts = catalog_texts(config)
    if not texts or not embeddings.available():
        return None
    known = known or {}
    return {text: known.get(text) or list(embeddings.embed(text)) for text in texts}


def store_catalog(session: Session, experiment: Experiment) -> None:
    """Store the vectors of the experiment's (new) catalog (in the caller's transaction):
    registration and every configuration change (experiments.registry). Only an
    experiment that declares an `embedding` field touches the table (`feature_types` is
    fixed at registration)."""
    if EMBEDDING not in experiment.settings.declared_types.values():
        return
    row = session.get(CatalogEmbeddings, experiment.id)
    vectors = catalog_vectors(experiment.settings, row.vectors if row is not None else None)
    if vectors is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(CatalogEmbeddings(experiment_id=experiment.id, vectors=vectors))
    elif row.vectors != vectors:
        row.vectors = vectors


def read_catalog(session: Session, experiment: Experiment) -> None:
    """Attach the stored vectors to the experiment's catalog (one primary-key read, only
    for catalogs that declare an `embedding` field)."""
    if not any(True for _ in _catalog_fields(experiment.settings)):
        return
    vectors = session.scalar(sa.select(CatalogEmbeddings.vectors).where(
        CatalogEmbeddings.experiment_id == experiment.id))
    attach_catalog(experiment.settings, vectors)


def attach_catalog(config: ExperimentConfig, vectors: Mapping[str, list[float]] | None,
                   ) -> None:
    """Give the catalog's `embedding` fields (in place) their stored vectors, as
    `embeddings.Embedded` text: rank encodes a catalog read from the database without
    running the model, in every worker (registry.get). The typed configuration holds
    the stored configuration's action objects, so both see them."""
    if not vectors:
        return
    for where, key in _catalog_fields(config):
        text = where[key]
        if not isinstance(text, embeddings.Embedded) and text in vectors:
            where[key] = embeddings.Embedded(text, tuple(vectors[text]))


def warm_catalogs(session: Session) -> int:
    """Load the model and embed every catalog's declared `embedding` fields (a worker's
    start), when some experiment declares an `embedding` field; the count embedded."""
    if not embeddings.available():
        return 0
    configs = [e.settings for e in session.scalars(sa.select(Experiment))]
    if not any(EMBEDDING in c.declared_types.values() for c in configs):
        return 0
    texts = [text for config in configs for text in catalog_texts(config)]
    embeddings.warm(texts or [" "])
    return len(texts)
