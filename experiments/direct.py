"""The hot path's writes: one statement, one round trip, committed when it returns.

A rank through the ORM session costs a pool ping, `BEGIN`, the statement and `COMMIT`
(four round trips on PostgreSQL) plus SQLAlchemy's per-execution bookkeeping, which
together were a third of a rank's CPU. A single `INSERT ... RETURNING` is atomic by
itself, so in autocommit mode it is durable the moment it returns: `Direct` compiles
such a statement once per dialect and runs it on a raw DBAPI connection of a dedicated
autocommit engine.

What the ORM would have done for us, done here instead:
- parameters: JSON columns are serialized (the statement's compiled bind types say
  which); everything else the DBAPI adapts itself;
- connections: each thread keeps one raw connection (taken out of the engine's pool
  once) and its cursor, so that a write pays no pool checkout;
- errors: DBAPI errors are re-raised as SQLAlchemy's (`OperationalError` -> 503 with
  Retry-After in app.errors); a lost connection is closed and the
  statement run once more on a fresh one, which is safe only because every statement
  given to `Direct` is idempotent (ON CONFLICT DO NOTHING on its natural key);
- no pre-ping: the retry above replaces it without a round trip per request.

Where one statement cannot do it (SQLite has no data-modifying CTE, a reward reads
before it writes), `chain` and `run` use one explicit transaction on the same kind of
connection.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

from experiments.sqlite_writes import Checkpointer, SqliteWriter

T = TypeVar("T")


class Compiled:
    """One statement as the DBAPI takes it: SQL text and how to lay out parameters."""

    def __init__(self, statement: sa.Executable, dialect: Dialect) -> None:
        compiled = cast(SQLCompiler, cast(sa.ClauseElement, statement).compile(dialect=dialect))
        self.sql = str(compiled)
        # Values written into the statement itself (`.values(target=None)`), by name.
        self.defaults = {name: value for name, value in compiled.params.items()
                         if not compiled.binds[name].required}
        self.positions: list[str] | None = (list(compiled.positiontup)
                                            if compiled.positiontup else None)
        # `JSON().with_variant(JSONB(), "postgresql")`: the type that applies is the
        # dialect's implementation.
        self.json_names = frozenset(
            name for name, bind in compiled.binds.items()
            if isinstance(bind.type.dialect_impl(dialect), sa.JSON))

    def parameters(self, values: Mapping[str, Any]) -> Any:
        merged = {**self.defaults, **values} if self.defaults else values
        json_names = self.json_names
        if self.positions is None:
            return {name: (_json_text(value) if name in json_names and value is not None
                           else value) for name, value in merged.items()}
        # Positional (SQLite): laid out in one pass.
        return tuple(_json_text(merged[name]) if name in json_names
                     and merged[name] is not None else merged[name]
                     for name in self.positions)


def _json_text(value: Any) -> str:
    """A JSON column's text: orjson (a rank writes three JSON columns; the standard
    library took a tenth of its CPU), the standard library for what orjson refuses
    (integers beyond 64 bits, keys that are not strings)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"))


First = Callable[[sa.Executable, Mapping[str, Any]], "tuple[Any, ...] | None"]


def chained(first: First, statements: Sequence[sa.Executable], values: Mapping[str, Any],
            link: str) -> tuple[Any, ...] | None:
    """Run `statements` with `first` in order, each binding the previous one's first
    column as `link` (None for the first one); the last one's row, or None as soon as one
    returns no row (the caller must then keep nothing of the transaction)."""
    row: tuple[Any, ...] | None = None
    for statement in statements:
        row = first(statement, {**values, link: None if row is None else row[0]})
        if row is None:
            return None
    return row


class Transaction:
    """Statements on one raw connection, inside `Direct.run`."""

    def __init__(self, direct: Direct, cursor: Any) -> None:
        self.dialect = direct.engine.dialect.name
        self._direct = direct
        self._cursor = cursor
        self.rollback_only = False
        self.committing = False
        self.last_sql = ""
        self.last_parameters: Any = None

    def rows(self, statement: sa.Executable, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row of `statement` (mind the size: all are fetched)."""
        self._execute(statement, values)
        return [tuple(row) for row in self._cursor.fetchall()]

    def first(self, statement: sa.Executable, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        self._execute(statement, values)
        row = self._cursor.fetchone()
        return None if row is None else tuple(row)

    def execute_text(self, sql: str) -> None:
        self.last_sql, self.last_parameters = sql, None
        self._cursor.execute(sql)

    def _execute(self, statement: sa.Executable, values: Mapping[str, Any]) -> None:
        compiled = self._direct.compiled(statement)
        self.last_sql, self.last_parameters = compiled.sql, compiled.parameters(values)
        self._cursor.execute(self.last_sql, self.last_parameters)


class _Held:
    """One thread's raw connection of the hot path, taken out of the pool for good, and
    its cursor (made once: making and closing one per write was ~10 µs of psycopg's
    Python). Checking a connection out of the pool and back in cost ~4 µs in one thread
    and ~3% of a gunicorn worker's GIL time with two threads sharing the pool's lock;
    statements run one at a time per thread, so one connection and one cursor do."""

    __slots__ = ("connection", "cursor", "pid", "generation", "closed", "__weakref__")

    def __init__(self, connection: Any, generation: int) -> None:
        self.connection = connection
        self.cursor = connection.dbapi_connection.cursor()
        self.pid = os.getpid()
        self.generation = generation
        self.closed = False

    def close(self) -> None:
        # Never in a forked child: closing would end the parent's session on the server.
        if not self.closed and self.pid == os.getpid():
            self.closed = True
            self.connection.close()  # detached: closes the DBAPI connection

    def discard(self, exc: BaseException | None = None) -> None:
        """Close a broken connection (a detached one's `invalidate` would only drop it)."""
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                self.connection.dbapi_connection.close()
            self.connection.invalidate(exc)

    def __del__(self) -> None:  # its thread ended (its local storage went)
        with contextlib.suppress(Exception):
            self.close()


class Direct:
    """The hot path's writes on raw connections of an autocommit engine (see the module
    docstring): single idempotent statements (`first`), chains of them (`chain`) and short
    transactions (`run`). `engine` must be made with `isolation_level="AUTOCOMMIT"`
    (app.db.make_engine does)."""

    def __init__(self, engine: sa.Engine,
                 on_error: Callable[[sa.exc.DBAPIError], None] | None = None) -> None:
        self.engine = engine
        self.on_error = on_error  # sees every database error (metrics)
        # By identity, holding the statement: its id cannot be reused while it is here.
        self._compiled: dict[int, tuple[sa.Executable, Compiled]] = {}
        self._lock = threading.Lock()
        self._writer = SqliteWriter(engine.url.database) if engine.dialect.name == "sqlite" \
            else None
        # A file database's WAL is checkpointed off the hot path (see Checkpointer).
        self._checkpointer = Checkpointer(engine, self._writer) \
            if self._writer is not None and self._writer.has_file else None
        self._local = threading.local()
        self._generation = 0  # `dispose` moves it on: older connections are not reused
        self._held: weakref.WeakSet[_Held] = weakref.WeakSet()

    def connection(self) -> _Held:
        """This thread's connection (opened on first use, again after `dispose`, a
        fork or a loss)."""
        held: _Held | None = getattr(self._local, "held", None)
        if held is None or held.generation != self._generation or held.pid != os.getpid():
            connection = self.engine.raw_connection()
            connection.detach()  # ours until closed: the pool neither counts nor lends it
            held = self._local.held = _Held(connection, self._generation)
            if self._checkpointer is not None:
                held.cursor.execute("PRAGMA wal_autocheckpoint=0")
                self._checkpointer.ensure_running()
            with self._lock:
                self._held.add(held)
        return held

    def forget(self, held: _Held) -> None:
        """Stop using `held` in this thread (it broke)."""
        if getattr(self._local, "held", None) is held:
            self._local.held = None

    def connections(self) -> int:
        """How many threads hold a connection now."""
        with self._lock:
            return sum(1 for held in self._held if held.generation == self._generation)

    def dispose(self) -> None:
        """Close every thread's connection and the engine's pool (tests, shutdown)."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._lock:
            self._generation += 1
            held, self._held = list(self._held), weakref.WeakSet()
        for each in held:
            with contextlib.suppress(Exception):
                each.close()
        self.engine.dispose()

    def compiled(self, statement: sa.Executable) -> Compiled:
        found = self._compiled.get(id(statement))
        if found is None or found[0] is not statement:
            with self._lock:
                found = (statement, Compiled(statement, self.engine.dialect))
                self._compiled[id(statement)] = found
        return found[1]

    def first(self, statement: sa.Executable, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Run `statement` (idempotent!) in autocommit: its first row, committed."""
        return self.run(lambda tx: tx.first(statement, values), explicit=False)

    def chain(self, statements: Sequence[sa.Executable], values: Mapping[str, Any],
              link: str) -> tuple[Any, ...] | None:
        """Run `statements` in order in one transaction, each binding the previous one's
        first column as `link`; the last one's first row, committed. The first statement
        that returns no row ends the chain with None, and nothing is kept. The chain as a
        whole must be idempotent, like a single statement. One statement runs in
        autocommit (one round trip)."""
        if len(statements) == 1:
            return self.first(statements[0], {**values, link: None})

        def work(tx: Transaction) -> tuple[Any, ...] | None:
            row = chained(tx.first, statements, values, link)
            tx.rollback_only = row is None
            return row

        return self.run(work)

    def run(self, work: Callable[[Transaction], T], *, explicit: bool = True) -> T:
        """`work(tx)` in one transaction on a raw connection, committed unless it raised
        or set `tx.rollback_only`. BEGIN is IMMEDIATE on SQLite: the write lock is taken
        up front, so a concurrent writer cannot make the transaction fail halfway.

        A connection lost before COMMIT was sent is replaced and `work` run once more
        (nothing of the first attempt was kept); lost during COMMIT, the outcome is
        unknown and the error goes to the caller (503: the client retries, and only
        idempotent writes are safe to retry). `explicit=False`: no BEGIN/COMMIT, for one
        statement in autocommit.
        """
        if self._writer is not None:
            with self._writer:
                return self._run(work, explicit)
        return self._run(work, explicit)

    def _run(self, work: Callable[[Transaction], T], explicit: bool) -> T:
        for attempt in (1, 2):
            held: _Held | None = None
            tx: Transaction | None = None
            try:
                held = self.connection()
                tx = Transaction(self, held.cursor)
                if explicit:
                    tx.execute_text(self._begin)
                try:
                    result = work(tx)
                except BaseException:
                    if explicit:
                        self._rollback(held)
                    raise
                if explicit:
                    tx.committing = True
                    tx.execute_text("ROLLBACK" if tx.rollback_only else "COMMIT")
                return result
            except self.engine.dialect.loaded_dbapi.Error as exc:
                # No connection at all (the server is down) counts as lost too.
                lost = held is None or self._lost(exc, held.connection)
                if held is not None:
                    if lost:
                        self.forget(held)
                        held.discard(exc)
                    elif explicit:
                        self._rollback(held)
                error = sa.exc.DBAPIError.instance(
                    tx.last_sql if tx else "", tx.last_parameters if tx else None, exc,
                    self.engine.dialect.loaded_dbapi.Error, connection_invalidated=lost,
                    dialect=self.engine.dialect)
                if self.on_error is not None and isinstance(error, sa.exc.DBAPIError):
                    self.on_error(error)
                if not lost or attempt == 2 or (tx is not None and tx.committing):
                    raise error from exc
        raise AssertionError("unreachable")  # pragma: no cover

    @property
    def _begin(self) -> str:
        return "BEGIN IMMEDIATE" if self.engine.dialect.name == "sqlite" else "BEGIN"

    def _rollback(self, held: _Held) -> None:
        try:
            held.cursor.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - nothing was open, or the connection broke
            self.forget(held)
            held.discard()

    def _lost(self, exc: Any, connection: Any) -> bool:
        try:
            return bool(self.engine.dialect.is_disconnect(exc, connection.dbapi_connection,
                                                          None))
        except Exception:  # noqa: BLE001 - a broken connection may fail to say why
            return True
