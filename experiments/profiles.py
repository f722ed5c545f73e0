"""Unit profiles (the feature store): a team stores a unit's features once, rank reads them.

A profile is a flat object of features (strings, numbers, booleans, lists of strings, long
text, lists of numbers) per team and unit, with a `version` (1, 2, ... per write),
`updated_at` and an optional expiry (`ttl_seconds`). Writes hash personal data as rank
hashes contexts (`experiments.pii`: the service's default field list and values that look
like e-mail addresses or card numbers; always hashed, never refused, since nobody is there
to correct them at rank time). A unit id that looks personal is stored as the team's keyed
hash, as decisions store it.

Every write also adds one to the team's change counter (`profile_epochs`) in the same
transaction; `ProfileCache` (one per worker) checks that counter at most every
`check_seconds` and drops the team's cached profiles when it moved, so a write is seen by
the next rank on every worker within that time. Merging into a rank's context:
`experiments.profile_merge`.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bandits.features import MAX_TEXT_CHARS, MAX_VECTOR_DIMS, FeatureError, escape_key
from experiments import audit, clock, pii, stored_embeddings
from experiments.config import PIIRules
from experiments.errors import NotFound, ValidationFailed
from experiments.models import Profile, ProfileEpoch

MAX_BATCH = 1000
MAX_FEATURES = 1000
MAX_TTL_SECONDS = 10 * 366 * 24 * 3600
BODY_FIELDS = {"features", "ttl_seconds"}
# The profile's own PII rules: the service default list and detection, always hashed.
_PII_CONFIG = PIIRules()


@dataclass(frozen=True)
class StoredProfile:
    """A profile as read from the table (read-only, shared by a worker's threads)."""

    unit_id: str
    features: dict[str, Any]
    version: int
    updated_at: float
    expires_at: float | None
    # Field → stored vector of its `embedding` fields (experiments.stored_embeddings).
    vectors: dict[str, list[float]] | None = field(default=None, compare=False, repr=False)
    # What rank derived from it per experiment setting (profile_merge), kept with it.
    prepared: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def as_dict(self) -> dict[str, Any]:
        return {"unit_id": self.unit_id, "features": self.features, "version": self.version,
                "updated_at": clock.iso(self.updated_at),
                "expires_at": clock.iso(self.expires_at)}


@dataclass(frozen=True)
class Written:
    unit_id: str
    version: int
    updated_at: float
    warnings: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        result = {"unit_id": self.unit_id, "version": self.version,
                  "updated_at": clock.iso(self.updated_at)}
        return {**result, "warnings": self.warnings} if self.warnings else result


def stored_unit(salt: str, unit_id: str) -> str:
    """The unit id as the profiles table keys it: the keyed hash when it looks personal."""
    return pii.keyed_hash(salt, unit_id) if pii.looks_personal(unit_id) else unit_id


def _unit_id(unit_id: Any, field: str = "unit_id") -> str:
    if not isinstance(unit_id, str) or not unit_id or len(unit_id) > 256:
        raise ValidationFailed.field(field, "must be a string of 1 to 256 characters")
    return unit_id


# --- validation ------------------------------------------------------------------------

def _feature_value(value: Any, path: str) -> Any:
    if value is None or isinstance(value, bool | str):
        if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
            raise ValidationFailed.field(path, f"at most {MAX_TEXT_CHARS} characters")
        return value
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")) or abs(value) > 3.4e38:
            raise ValidationFailed.field(path, "must be a finite number (|x| <= 3.4e38)")
        return value
    if isinstance(value, list):
        if all(isinstance(item, str) for item in value):
            return value
        if len(value) > MAX_VECTOR_DIMS:
            raise ValidationFailed.field(path, f"a vector has at most {MAX_VECTOR_DIMS} numbers")
        for index, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, int | float) \
                    or item != item or abs(item) > 3.4e38:
                raise ValidationFailed.field(
                    f"{path}[{index}]", "a list holds strings only, or finite numbers only")
        return value
    if isinstance(value, Mapping):
        raise ValidationFailed.field(path, "profile features are flat: no nested objects "
                                           "(the profile is one namespace of the context)")
    raise ValidationFailed.field(path, f"unsupported value type {type(value).__name__}")


def validate_features(features: Any, path: str = "features") -> dict[str, Any]:
    """A flat object of encodable values (see the module docstring)."""
    if not isinstance(features, Mapping):
        raise ValidationFailed.field(path, "must be an object")
    if len(features) > MAX_FEATURES:
        raise ValidationFailed.field(path, f"at most {MAX_FEATURES} features")
    result = {}
    for key, value in features.items():
        try:
            escape_key(key)
        except (FeatureError, TypeError):  # pragma: no cover - JSON keys are strings
            raise ValidationFailed.field(path, "keys must be strings") from None
        result[key] = _feature_value(value, f"{path}.{key}")
    return result


def _ttl(body: Mapping[str, Any], path: str) -> float | None:
    ttl = body.get("ttl_seconds")
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) \
            or not 0 < ttl <= MAX_TTL_SECONDS:
        raise ValidationFailed.field(f"{path}ttl_seconds",
                                     f"must be a number of seconds in (0, {MAX_TTL_SECONDS}]")
    return float(ttl)


def _body(body: Any, path: str = "") -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise ValidationFailed.field(path.rstrip(".") or "body", "must be a JSON object")
    unknown = sorted(set(body) - BODY_FIELDS - ({"unit_id"} if path else set()))
    if unknown:
        raise ValidationFailed.field(f"{path}{unknown[0]}",
                                     "unknown field (features, ttl_seconds)")
    return body


def _guarded(features: dict[str, Any], salt: str,
             path: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Personal data hashed, as in a context; warnings name `path.<key>`."""
    guarded = pii.guard(features, None, _PII_CONFIG, salt)
    warnings = [{**w, "field": w["field"].replace("context.", f"{path}.", 1),
                 "message": w["message"].replace("context.", f"{path}.", 1)}
                for w in guarded.warnings]
    return guarded.context, warnings


# --- writes ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Row:
    unit_id: str  # as stored
    clear_id: str  # as sent (the answer names it)
    features: dict[str, Any]
    expires_at: float | None
    warnings: list[dict[str, Any]]
    path: str = "features"  # where the features sit in the request (for errors)


def _row(unit_id: str, body: Any, salt: str, now: float, path: str = "") -> _Row:
    body = _body(body, path)
    if "features" not in body:
        raise ValidationFailed.field(f"{path}features", "required")
    features = validate_features(body["features"], f"{path}features")
    ttl = _ttl(body, path)
    guarded, warnings = _guarded(features, salt, f"{path}features")
    return _Row(stored_unit(salt, unit_id), unit_id, guarded,
                None if ttl is None else now + ttl, warnings, f"{path}features")


@functools.cache
def _upsert(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (team, unit) DO UPDATE: a new version replaces the features.
    Core, executed with a list of rows: SQLAlchemy batches them into multi-row VALUES
    ("insertmanyvalues") from one compiled statement (compiling a 1000-row VALUES per
    call cost more than the write)."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    table = cast(sa.Table, Profile.__table__)
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=["team_id", "unit_id"],
        set_={"features": statement.excluded.features, "version": table.c.version + 1,
              "updated_at": statement.excluded.updated_at,
              "expires_at": statement.excluded.expires_at,
              "embeddings": statement.excluded.embeddings},
    ).returning(table.c.unit_id, table.c.version)


def bump(session: Session, team_id: int) -> None:
    """Add one to the team's change counter (in the caller's transaction)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(ProfileEpoch).values(team_id=team_id, counter=1)
    session.execute(statement.on_conflict_do_update(
        index_elements=["team_id"], set_={"counter": ProfileEpoch.counter + 1}))


def _write(session: Session, team_id: int, rows: list[_Row], now: float,
           known: Mapping[str, list[float]] | None = None) -> list[Written]:
    """Upsert the rows with their embeddings (computed here, before the transaction
    writes: `known`, text → vector already stored, spares a PATCH the model)."""
    dialect = session.get_bind().dialect.name
    keys = stored_embeddings.profile_fields(session, team_id)
    values = [{"team_id": team_id, "unit_id": r.unit_id, "features": r.features,
               "version": 1, "updated_at": now, "expires_at": r.expires_at,
               "embeddings": stored_embeddings.profile_vectors(keys, r.features, r.path,
                                                               known) if keys else None}
              for r in rows]
    result = session.connection().execute(_upsert(dialect), values)
    versions = {unit: version for unit, version in result}
    bump(session, team_id)
    session.commit()
    return [Written(r.clear_id, versions[r.unit_id], now, r.warnings) for r in rows]


def put(session: Session, team_id: int, salt: str, unit_id: str, body: Any) -> Written:
    """Replace (or create) a unit's profile; commits."""
    now = clock.now()
    return _write(session, team_id, [_row(_unit_id(unit_id), body, salt, now)], now)[0]


def put_many(session: Session, team_id: int, salt: str, body: Any) -> list[Written]:
    """`{"profiles": [{"unit_id", "features", "ttl_seconds"?}, ...]}` (at most
    MAX_BATCH, unit ids distinct) in one statement and one transaction; commits."""
    if not isinstance(body, Mapping) or not isinstance(body.get("profiles"), list):
        raise ValidationFailed.field("profiles", "must be a list of profiles")
    unknown = sorted(set(body) - {"profiles"})
    if unknown:
        raise ValidationFailed.field(unknown[0], "unknown field (profiles)")
    items = body["profiles"]
    if not 1 <= len(items) <= MAX_BATCH:
        raise ValidationFailed.field("profiles", f"1 to {MAX_BATCH} profiles per call")
    now, rows, seen = clock.now(), [], set()
    for index, item in enumerate(items):
        path = f"profiles[{index}]."
        unit_id = _unit_id(item.get("unit_id") if isinstance(item, Mapping) else None,
                           f"{path}unit_id")
        row = _row(unit_id, item, salt, now, path)
        if row.unit_id in seen:
            raise ValidationFailed.field(f"{path}unit_id", f"duplicate unit id {unit_id!r}")
        seen.add(row.unit_id)
        rows.append(row)
    return _write(session, team_id, rows, now)


def patch(session: Session, team_id: int, salt: str, unit_id: str, body: Any) -> Written:
    """Merge features into the profile (a null value removes that feature; a missing
    profile is created); `ttl_seconds`, when given, restarts the expiry. Commits."""
    body = _body(body)
    changes = validate_features(body.get("features", {}))
    unit = stored_unit(salt, _unit_id(unit_id))
    current = session.scalars(sa.select(Profile).where(
        Profile.team_id == team_id, Profile.unit_id == unit).with_for_update()).first()
    features = dict(current.features) if current is not None else {}
    features.update(changes)
    merged = {k: v for k, v in features.items() if v is not None}
    now = clock.now()
    ttl = _ttl(body, "")
    row = _row(unit_id, {"features": merged}, salt, now)
    expires = now + ttl if ttl is not None else (current.expires_at if current else None)
    known = {current.features[k]: v for k, v in (current.embeddings or {}).items()
             if isinstance(current.features.get(k), str)} if current is not None else None
    return _write(session, team_id, [_Row(row.unit_id, unit_id, row.features, expires,
                                          row.warnings)], now, known)[0]


def read(session: Session, actor: audit.KeyPrincipal, salt: str, unit_id: str) -> StoredProfile:
    """The unit's profile (404 when absent or expired); the read goes to the audit log
    under the unit's keyed hash. Commits."""
    found = load(session, actor.team_id, stored_unit(salt, _unit_id(unit_id)))
    if found is None or found.expired(clock.now()):
        raise NotFound("no profile is stored for this unit id (or it expired)")
    audit.record(session, actor, "profile.read", pii.keyed_hash(salt, unit_id),
                 {"version": found.version})
    session.commit()
    return StoredProfile(unit_id, found.features, found.version, found.updated_at,
                         found.expires_at)


def delete(session: Session, actor: audit.KeyPrincipal, salt: str, unit_id: str) -> int:
    """Remove the unit's profile (404 when there is none); audited; commits."""
    removed = remove(session, actor.team_id, {unit_id, stored_unit(salt, _unit_id(unit_id))})
    if not removed:
        raise NotFound("no profile is stored for this unit id")
    audit.record(session, actor, "profile.delete", pii.keyed_hash(salt, unit_id))
    session.commit()
    return removed


def remove(session: Session, team_id: int, unit_forms: set[str]) -> int:
    """Delete the profiles stored under any of these ids (in the caller's transaction)."""
    result = cast(sa.CursorResult[Any], session.execute(
        sa.delete(Profile).where(Profile.team_id == team_id, Profile.unit_id.in_(unit_forms)),
        execution_options={"synchronize_session": False}))
    if result.rowcount:
        bump(session, team_id)
    return result.rowcount or 0


def load(session: Session, team_id: int, unit: str) -> StoredProfile | None:
    """One profile by its stored unit id (one primary-key probe)."""
    row = session.execute(sa.select(
        Profile.unit_id, Profile.features, Profile.version, Profile.updated_at,
        Profile.expires_at, Profile.embeddings).where(
            Profile.team_id == team_id, Profile.unit_id == unit)).first()
    return None if row is None else StoredProfile(*row)


def counter(session: Session, team_id: int) -> int:
    return session.scalar(sa.select(ProfileEpoch.counter).where(
        ProfileEpoch.team_id == team_id)) or 0


# --- the per-worker cache --------------------------------------------------------------

class ProfileCache:
    """A worker's profiles by (team, stored unit id), absent ones included.

    Before serving a team's entry it checks the team's change counter, at most once per
    `check_seconds`; when the counter moved (a write through any process), the team's
    entries are dropped. So a write is visible to this worker's next rank within
    `check_seconds`. Bounded: cleared when `size` entries are held.
    """

    def __init__(self, check_seconds: float = 1.0, size: int = 100_000) -> None:
        self.check_seconds = check_seconds
        self.size = size
        self._teams: dict[int, dict[str, StoredProfile | None]] = {}
        self._epochs: dict[int, tuple[int, float]] = {}
        self._count = 0
        self._lock = threading.Lock()

    def get(self, session: Session, team_id: int, unit: str) -> StoredProfile | None:
        entries = self._fresh(session, team_id)
        if unit in entries:
            return entries[unit]
        found = load(session, team_id, unit)
        with self._lock:
            if self._count >= self.size:
                for held in self._teams.values():
                    held.clear()
                self._count = 0
            entries[unit] = found
            self._count += 1
        return found

    def _fresh(self, session: Session, team_id: int) -> dict[str, StoredProfile | None]:
        now = time.monotonic()
        epoch = self._epochs.get(team_id)
        entries = self._teams.get(team_id)
        if epoch is not None and entries is not None and now - epoch[1] < self.check_seconds:
            return entries
        current = counter(session, team_id)
        with self._lock:
            if epoch is None or entries is None or epoch[0] != current:
                entries = self._teams[team_id] = {}
            self._epochs[team_id] = (current, now)
        return entries
