"""The log on PostgreSQL: one schema per operator; the database sets position, time and leaf.

``ledger db init`` (as an administrator) creates, in the operator's schema:

- ``ledger_log``, whose BEFORE INSERT trigger ``ledger_assign`` takes the writers'
  lock, then sets the entry's position (the last + 1), its recorded time (the
  database clock when the transaction first appends, never before the last
  entry's; every entry of one transaction gets the same time) and its leaf hash,
  computed in SQL from the same canonical bytes as ``eventstore.canonical``;
  whatever the inserting client wrote in those columns is overwritten;
- triggers refusing UPDATE, DELETE and TRUNCATE for every role, all ``ENABLE
  ALWAYS`` so that ``session_replication_role = replica`` does not switch them off;
- ``ledger_append(…)``, a SECURITY DEFINER function: the writer role's only way to
  add entries. The writer role may read the log but not INSERT into it.

What remains possible, and how it is caught, is in docs/audit.md: a superuser can
disable triggers or rewrite rows; ``ledger audit verify`` recomputes every leaf and
checks the tree against the signed checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier, Literal

from eventstore.canonical import canonical_json, format_time
from eventstore.log import FORMAT, LogEntry, LogFormatError, PendingEntry, StoreBusy, StoreReadOnly

LOG, REFS, TREE, META, LOCK = "ledger_log", "ledger_refs", "ledger_tree", "ledger_meta", \
    "ledger_write_lock"
_COLUMNS = SQL("position, recorded_at, aggregate_id, aggregate_version, event, event_version, "
               "data, metadata, leaf")
APPEND_ARGS = "uuid[], integer[], text[], integer[], bytea[], bytea[], text[], integer[]"
TRIGGERS = ("ledger_append_only", "ledger_assign", "ledger_no_truncate")
_TIME_FORMAT = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"


def writer_role(schema: str) -> str:
    return f"{schema}_writer"


def _entry(row: dict[str, Any]) -> LogEntry:
    return LogEntry(id=row["position"], recorded_at_text=format_time(row["recorded_at"]),
                    originator_id=str(row["aggregate_id"]),
                    originator_version=row["aggregate_version"],
                    topic=row["event"], event_version=row["event_version"],
                    state=bytes(row["data"]), metadata=bytes(row["metadata"]),
                    leaf=bytes(row["leaf"]))


def schema_statements(schema: str) -> list[SQL]:
    """What ``ledger db init`` runs as an administrator. Safe to run again."""
    s = Identifier(schema)
    role = Identifier(writer_role(schema))
    leaf = SQL(
        "sha256('\\x00'::bytea"
        " || convert_to('{{\"aggregate_id\":\"' || NEW.aggregate_id::text"
        " || '\",\"aggregate_version\":' || NEW.aggregate_version::text || ',\"data\":', 'UTF8')"
        " || NEW.data"
        " || convert_to(',\"event\":\"' || NEW.event || '\",\"event_version\":'"
        " || NEW.event_version::text || ',\"metadata\":', 'UTF8')"
        " || NEW.metadata"
        " || convert_to(',\"position\":' || NEW.position::text || ',\"recorded_at\":\"'"
        " || to_char(NEW.recorded_at AT TIME ZONE 'UTC', {0}) || '\"}}', 'UTF8'))"
    ).format(SQL(_TIME_FORMAT))
    definer = SQL("LANGUAGE plpgsql SECURITY DEFINER SET search_path = {0}, pg_catalog, pg_temp"
                  ).format(s)
    return [
        SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(s),
        SQL("CREATE TABLE IF NOT EXISTS {0}.ledger_log ("
            "position bigint PRIMARY KEY, recorded_at timestamptz NOT NULL, "
            "aggregate_id uuid NOT NULL, aggregate_version integer NOT NULL, "
            "event text NOT NULL CHECK (event ~ '^[a-z][a-z0-9_]*([.][a-z][a-z0-9_]*)+$'), "
            "event_version integer NOT NULL, data bytea NOT NULL, metadata bytea NOT NULL, "
            "leaf bytea NOT NULL, UNIQUE (aggregate_id, aggregate_version))").format(s),
        SQL("CREATE TABLE IF NOT EXISTS {0}.ledger_refs (ref text NOT NULL, "
            "position bigint NOT NULL, PRIMARY KEY (ref, position))").format(s),
        SQL("CREATE TABLE IF NOT EXISTS {0}.ledger_tree (level integer NOT NULL, "
            "idx bigint NOT NULL, hash bytea NOT NULL, PRIMARY KEY (level, idx))").format(s),
        SQL("CREATE TABLE IF NOT EXISTS {0}.ledger_meta (key text PRIMARY KEY, "
            "value text NOT NULL)").format(s),
        SQL("INSERT INTO {0}.ledger_meta VALUES ('format', {1}) ON CONFLICT DO NOTHING").format(
            s, Literal(FORMAT)),
        SQL("CREATE TABLE IF NOT EXISTS {0}.ledger_write_lock (id integer PRIMARY KEY)").format(s),
        SQL("CREATE OR REPLACE FUNCTION {0}.ledger_assign() RETURNS trigger {1} AS $$\n"
            "DECLARE last_position bigint; last_time timestamptz; ours boolean;\n"
            "BEGIN\n"
            "  LOCK TABLE ledger_write_lock IN EXCLUSIVE MODE;\n"
            "  SELECT l.position, l.recorded_at, l.xmin = pg_current_xact_id()::xid\n"
            "    INTO last_position, last_time, ours\n"
            "    FROM ledger_log l ORDER BY l.position DESC LIMIT 1;\n"
            "  NEW.position := coalesce(last_position, 0) + 1;\n"
            "  IF ours THEN NEW.recorded_at := last_time;\n"
            "  ELSE NEW.recorded_at := greatest(clock_timestamp(), last_time);\n"
            "  END IF;\n"
            "  NEW.leaf := {2};\n"
            "  RETURN NEW;\n"
            "END $$").format(s, definer, leaf),
        SQL("CREATE OR REPLACE FUNCTION {0}.ledger_refuse_rewrite() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
            "'the ledger history is append-only: % on %.% refused', "
            "TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME; END $$").format(s),
        SQL("DROP TRIGGER IF EXISTS ledger_assign ON {0}.ledger_log").format(s),
        SQL("CREATE TRIGGER ledger_assign BEFORE INSERT ON {0}.ledger_log "
            "FOR EACH ROW EXECUTE FUNCTION {0}.ledger_assign()").format(s),
        SQL("DROP TRIGGER IF EXISTS ledger_append_only ON {0}.ledger_log").format(s),
        SQL("CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON {0}.ledger_log "
            "FOR EACH ROW EXECUTE FUNCTION {0}.ledger_refuse_rewrite()").format(s),
        SQL("DROP TRIGGER IF EXISTS ledger_no_truncate ON {0}.ledger_log").format(s),
        SQL("CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON {0}.ledger_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION {0}.ledger_refuse_rewrite()").format(s),
        *(SQL("ALTER TABLE {0}.ledger_log ENABLE ALWAYS TRIGGER {1}").format(s, Identifier(name))
          for name in TRIGGERS),
        SQL("CREATE OR REPLACE FUNCTION {0}.ledger_append(p_ids uuid[], p_versions integer[], "
            "p_events text[], p_event_versions integer[], p_data bytea[], p_metadata bytea[], "
            "p_refs text[], p_ref_items integer[]) RETURNS bigint {1} AS $$\n"
            "DECLARE first_position bigint;\n"
            "BEGIN\n"
            "  INSERT INTO ledger_log (aggregate_id, aggregate_version, event, event_version,\n"
            "                          data, metadata)\n"
            "  SELECT u.id, u.v, u.e, u.ev, u.d, u.m\n"
            "    FROM unnest(p_ids, p_versions, p_events, p_event_versions, p_data, p_metadata)\n"
            "         WITH ORDINALITY AS u(id, v, e, ev, d, m, n)\n"
            "   ORDER BY u.n;\n"
            "  first_position := (SELECT max(position) FROM ledger_log)"
            " - cardinality(p_ids) + 1;\n"
            "  INSERT INTO ledger_refs (ref, position)\n"
            "  SELECT r.ref, first_position + r.item - 1\n"
            "    FROM unnest(p_refs, p_ref_items) AS r(ref, item)\n"
            "  ON CONFLICT DO NOTHING;\n"
            "  RETURN first_position;\n"
            "END $$").format(s, definer),
        # Planner statistics after a large write: the writer role does not own the tables, so
        # it analyzes them through this function (see PostgresLog.checkpoint_wal).
        SQL("CREATE OR REPLACE FUNCTION {0}.ledger_analyze() RETURNS void {1} AS $$\n"
            "BEGIN ANALYZE ledger_log; ANALYZE ledger_refs; END $$").format(s, definer),
        SQL("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {0}) THEN "
            "CREATE ROLE {1} LOGIN; END IF; END $$").format(Literal(writer_role(schema)), role),
        SQL("REVOKE ALL ON SCHEMA {0} FROM PUBLIC").format(s),
        SQL("GRANT USAGE ON SCHEMA {0} TO {1}").format(s, role),
        SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {0} FROM PUBLIC, {1}").format(s, role),
        SQL("REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {0} FROM PUBLIC, {1}").format(s, role),
        SQL("GRANT SELECT ON {0}.ledger_log, {0}.ledger_refs, {0}.ledger_meta, {0}.ledger_tree "
            "TO {1}").format(s, role),
        # The node cache is not history: proofs are checked against signed roots.
        SQL("GRANT INSERT ON {0}.ledger_tree TO {1}").format(s, role),
        SQL("GRANT EXECUTE ON FUNCTION {0}.ledger_append({2}) TO {1}").format(
            s, role, SQL(APPEND_ARGS)),
        SQL("GRANT EXECUTE ON FUNCTION {0}.ledger_analyze() TO {1}").format(s, role),
        # Durability: a commit returns only once it is on disk, whatever the server default.
        SQL("ALTER ROLE {0} SET synchronous_commit = on").format(role),
    ]


def create_operator(config_env: dict[str, str], schema: str) -> list[str]:
    """Create (or update) an operator's schema, log, protection and writer role."""
    import psycopg

    with psycopg.connect(
        dbname=config_env["POSTGRES_DBNAME"], host=config_env["POSTGRES_HOST"],
        port=config_env["POSTGRES_PORT"], user=config_env["POSTGRES_USER"],
        password=config_env["POSTGRES_PASSWORD"] or None, connect_timeout=10,
    ) as conn, conn.transaction():
        for statement in schema_statements(schema):
            conn.execute(statement)
    role = writer_role(schema)
    return [
        (f"schema {schema} with the log {LOG}: position, recorded time and leaf hash set by the "
         "database; UPDATE, DELETE and TRUNCATE refused by triggers that replication mode does "
         "not disable"),
        f"role {role}: may read the log and append through {schema}.ledger_append only",
    ]


class PostgresLog(ApplicationRecorder):
    """The ledger's log in one operator's PostgreSQL schema."""

    kind = "postgres"
    #: Events per call of ledger_append. One call for a whole 73 000-event import kept the
    #: transaction idle on the server while the client adapted the parameters for too long.
    INSERT_CHUNK = 5_000

    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore
        self.schema = datastore.schema
        s = Identifier(self.schema)
        self._log = SQL("{0}.{1}").format(s, Identifier(LOG))
        self._refs = SQL("{0}.{1}").format(s, Identifier(REFS))
        self._tree = SQL("{0}.{1}").format(s, Identifier(TREE))
        self._meta = SQL("{0}.{1}").format(s, Identifier(META))
        self._append = SQL("SELECT {0}.ledger_append(%s, %s, %s, %s, %s, %s, %s, %s) AS first"
                           ).format(s)

    def check_format(self) -> None:
        with self.datastore.get_connection() as conn:
            tables = {row["tablename"] for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (self.schema,))}
            if LOG not in tables:
                if tables:
                    raise LogFormatError(
                        f"schema {self.schema} was set up by a version of the ledger without the "
                        "provable log: create a new operator schema with `ledger db init` and "
                        "re-import its command files")
                raise LogFormatError(
                    f"schema {self.schema} is not initialised: run `ledger db init` with an "
                    "administrator's URL and the same --operator first")
            row = conn.execute(SQL("SELECT value FROM {0} WHERE key = 'format'").format(
                self._meta)).fetchone()
        if row is None or row["value"] != FORMAT:
            raise LogFormatError(f"this store's log format is {row['value'] if row else 'unknown'}"
                                 f"; this version of the ledger reads format {FORMAT}")

    def triggers(self) -> list[str]:
        with self.datastore.get_connection() as conn:
            rows = conn.execute(
                "SELECT tgname, tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND "
                "c.relname = %s AND NOT t.tgisinternal ORDER BY tgname",
                (self.schema, LOG)).fetchall()
        return [row["tgname"] + ("" if row["tgenabled"] == "A" else " (not ALWAYS)")
                for row in rows]

    # Appending -------------------------------------------------------------------------------

    def session(self) -> PostgresSession:
        """One write transaction: appends (through ledger_append) and reads on one connection,
        committed at the end, rolled back if anything fails."""
        return PostgresSession(self)

    def insert_events(self, stored_events: Sequence[PendingEntry], *,
                      metadata: dict[str, Any] | None = None,
                      event_metadata: dict[tuple[UUID, int], dict[str, Any]] | None = None,
                      **_: Any) -> Sequence[int]:
        with self.session() as session:
            return session.append(stored_events, metadata, event_metadata)

    # Reading ---------------------------------------------------------------------------------

    def _rows(self, statement: SQL, params: Sequence[Any]) -> list[LogEntry]:
        with self.datastore.get_connection() as conn:
            return [_entry(row) for row in conn.execute(statement, params).fetchall()]

    def select_events(self, originator_id: UUID | str, *, gt: int | None = None,
                      lte: int | None = None, desc: bool = False, limit: int | None = None,
                      upto: int | None = None) -> Sequence[LogEntry]:
        parts = [SQL("SELECT {0} FROM {1} WHERE aggregate_id = %s").format(_COLUMNS, self._log)]
        params: list[Any] = [originator_id]
        for clause, value in (("aggregate_version > %s", gt), ("aggregate_version <= %s", lte),
                              ("position <= %s", upto)):
            if value is not None:
                parts.append(SQL(" AND " + clause))
                params.append(value)
        parts.append(SQL(" ORDER BY aggregate_version DESC" if desc
                         else " ORDER BY aggregate_version"))
        if limit is not None:
            parts.append(SQL(" LIMIT %s"))
            params.append(limit)
        return self._rows(SQL("").join(parts), params)

    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Sequence[str] = (), *, inclusive_of_start: bool = True
                             ) -> Sequence[LogEntry]:
        parts = [SQL("SELECT {0} FROM {1} WHERE true").format(_COLUMNS, self._log)]
        params: list[Any] = []
        if start is not None:
            parts.append(SQL(" AND position >= %s" if inclusive_of_start
                             else " AND position > %s"))
            params.append(start)
        if stop is not None:
            parts.append(SQL(" AND position <= %s"))
            params.append(stop)
        if topics:
            parts.append(SQL(" AND event = ANY(%s)"))
            params.append(list(topics))
        parts.append(SQL(" ORDER BY position LIMIT %s"))
        params.append(limit)
        return self._rows(SQL("").join(parts), params)

    def max_notification_id(self) -> int:
        with self.datastore.get_connection() as conn:
            row = conn.execute(SQL("SELECT coalesce(max(position), 0) AS last FROM {0}").format(
                self._log)).fetchone()
        return row["last"]

    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> Any:
        raise NotImplementedError("the ledger reads its log by position, without subscriptions")

    def entry(self, position: int) -> LogEntry | None:
        rows = self._rows(SQL("SELECT {0} FROM {1} WHERE position = %s").format(
            _COLUMNS, self._log), [position])
        return rows[0] if rows else None

    def recorded_at(self, position: int) -> datetime | None:
        with self.datastore.get_connection() as conn:
            row = conn.execute(SQL("SELECT recorded_at FROM {0} WHERE position = %s").format(
                self._log), (position,)).fetchone()
        return row["recorded_at"].astimezone(UTC) if row else None

    def _stream(self, statement: SQL, params: Sequence[Any]) -> Iterator[LogEntry]:
        with self.datastore.get_connection() as conn, conn.transaction(), \
                conn.cursor(name="ledger_scan") as cursor:
            cursor.itersize = 5_000
            cursor.execute(statement, params)
            for row in cursor:
                yield _entry(row)

    def scan(self, start: int = 1, upto: int | None = None, events: Iterable[str] | None = None
             ) -> Iterator[LogEntry]:
        parts = [SQL("SELECT {0} FROM {1} WHERE position >= %s").format(_COLUMNS, self._log)]
        params: list[Any] = [start]
        if upto is not None:
            parts.append(SQL(" AND position <= %s"))
            params.append(upto)
        if events is not None:
            parts.append(SQL(" AND event = ANY(%s)"))
            params.append(sorted(events))
        parts.append(SQL(" ORDER BY position"))
        return self._stream(SQL("").join(parts), params)

    def scan_by_aggregate(self, events: Iterable[str], upto: int | None = None
                          ) -> Iterator[LogEntry]:
        parts = [SQL("SELECT {0} FROM {1} WHERE event = ANY(%s)").format(_COLUMNS, self._log)]
        params: list[Any] = [sorted(events)]
        if upto is not None:
            parts.append(SQL(" AND position <= %s"))
            params.append(upto)
        parts.append(SQL(" ORDER BY aggregate_id, aggregate_version"))
        return self._stream(SQL("").join(parts), params)

    def select_aggregates(self, ids: Sequence[UUID | str], upto: int | None = None
                          ) -> list[LogEntry]:
        """The entries of several aggregates, ordered by (aggregate, version), in one read."""
        parts = [SQL("SELECT {0} FROM {1} WHERE aggregate_id = ANY(%s)").format(
            _COLUMNS, self._log)]
        params: list[Any] = [[i if isinstance(i, UUID) else UUID(str(i)) for i in ids]]
        if upto is not None:
            parts.append(SQL(" AND position <= %s"))
            params.append(upto)
        parts.append(SQL(" ORDER BY aggregate_id, aggregate_version"))
        return self._rows(SQL("").join(parts), params)

    def existing_ids(self, ids: list[UUID]) -> set[UUID]:
        found: set[UUID] = set()
        statement = SQL("SELECT DISTINCT aggregate_id FROM {0} WHERE aggregate_id = ANY(%s)"
                        ).format(self._log)
        with self.datastore.get_connection() as conn:
            for start in range(0, len(ids), 500):
                rows = conn.execute(statement, (ids[start:start + 500],)).fetchall()
                found |= {row["aggregate_id"] for row in rows}
        return found

    def positions_of(self, ref: str, upto: int | None = None) -> list[int]:
        parts = [SQL("SELECT position FROM {0} WHERE ref = %s").format(self._refs)]
        params: list[Any] = [ref]
        if upto is not None:
            parts.append(SQL(" AND position <= %s"))
            params.append(upto)
        parts.append(SQL(" ORDER BY position"))
        with self.datastore.get_connection() as conn:
            return [row["position"] for row in
                    conn.execute(SQL("").join(parts), params).fetchall()]

    def leaves(self, lo: int, hi: int) -> list[bytes]:
        with self.datastore.get_connection() as conn:
            rows = conn.execute(SQL("SELECT leaf FROM {0} WHERE position > %s AND position <= %s "
                                    "ORDER BY position").format(self._log), (lo, hi)).fetchall()
        return [bytes(row["leaf"]) for row in rows]

    def tree_nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        if not keys:
            return {}
        with self.datastore.get_connection() as conn:
            rows = conn.execute(
                SQL("SELECT t.level, t.idx, t.hash FROM {0} t JOIN unnest(%s::integer[], "
                    "%s::bigint[]) AS k(level, idx) ON t.level = k.level AND t.idx = k.idx"
                    ).format(self._tree),
                ([k[0] for k in keys], [k[1] for k in keys])).fetchall()
        return {(row["level"], row["idx"]): bytes(row["hash"]) for row in rows}

    def put_tree_nodes(self, nodes: dict[tuple[int, int], bytes]) -> None:
        if not nodes:
            return
        items = list(nodes.items())
        with self.datastore.get_connection() as conn, conn.transaction():
            conn.execute(
                SQL("INSERT INTO {0} (level, idx, hash) SELECT * FROM unnest(%s::integer[], "
                    "%s::bigint[], %s::bytea[]) ON CONFLICT DO NOTHING").format(self._tree),
                ([k[0] for k, _ in items], [k[1] for k, _ in items], [h for _, h in items]))

    #: Analyze once this share of the log has been appended since the last time (autovacuum's
    #: default threshold, but at once rather than up to a minute later).
    ANALYZE_SHARE = 0.1
    ANALYZE_MINIMUM = 10_000

    def checkpoint_wal(self, appended: int = 0) -> None:
        """After a large write: refresh the planner's statistics once a tenth of the log is new.

        Measured (docs/performance.md): right after importing and billing 100 k events, reads of
        one customer took 9× longer until autovacuum had analyzed the tables, because the
        planner still saw the small log of before. ``ledger_analyze`` runs as the schema's owner;
        a store set up by an earlier version has none until ``ledger db init`` runs again, and
        is left to autovacuum."""
        from eventsourcing.persistence import ProgrammingError

        self._appended_since_analyze = getattr(self, "_appended_since_analyze", 0) + appended
        if self._appended_since_analyze < max(self.ANALYZE_MINIMUM,
                                              self.ANALYZE_SHARE * self.max_notification_id()):
            return
        try:
            with self.datastore.get_connection() as conn, conn.transaction():
                conn.execute(SQL("SELECT {0}.ledger_analyze()").format(Identifier(self.schema)))
        except ProgrammingError as error:  # the library's wrapper of psycopg's UndefinedFunction
            if "ledger_analyze" not in str(error):
                raise
        self._appended_since_analyze = 0

    def settings(self) -> dict[str, str]:
        with self.datastore.get_connection() as conn:
            values = {name: str(conn.execute(f"SHOW {name}").fetchone()[name])
                      for name in ("server_version", "synchronous_commit", "fsync")}
            values["connected_as"] = str(conn.execute("SELECT current_user AS u").fetchone()["u"])
        return values


def init_operator(config: Any) -> list[str]:
    """What ``ledger db init`` does for one operator (``config``: a PostgreSQL
    :class:`eventstore.app.StoreConfig` reached with an administrator's URL). Safe to run again.
    Returns what was done, for the user."""
    return create_operator(config.env, config.schema)


class PostgresSession:
    """A write transaction on one operator's log. The writers' lock is taken by the database
    on the first append and held until the end."""

    def __init__(self, log: PostgresLog) -> None:
        self.log = log

    def __enter__(self) -> PostgresSession:
        self._connection = self.log.datastore.get_connection()
        self.conn = self._connection.__enter__()
        self._transaction = self.conn.transaction()
        self._transaction.__enter__()
        self.conn.execute(SQL("SET LOCAL lock_timeout = '{0}s'").format(
            self.log.datastore.lock_timeout or 30))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._transaction.__exit__(exc_type, exc, tb)
        finally:
            self._connection.__exit__(exc_type, exc, tb)

    def append(self, stored_events: Sequence[PendingEntry],
               metadata: dict[str, Any] | None = None,
               event_metadata: dict[tuple[UUID, int], dict[str, Any]] | None = None
               ) -> list[int]:
        common = metadata or {}
        extra = event_metadata or {}
        shared = canonical_json(common)
        positions: list[int] = []
        for start in range(0, len(stored_events), self.log.INSERT_CHUNK):
            chunk = stored_events[start:start + self.log.INSERT_CHUNK]
            refs, items, metas = [], [], []
            for number, stored in enumerate(chunk, start=1):
                refs += stored.refs
                items += [number] * len(stored.refs)
                own = extra.get((stored.originator_id, stored.originator_version))
                metas.append(canonical_json({**common, **own}) if own else shared)
            try:
                first = self.conn.execute(self.log._append, (
                    [s.originator_id for s in chunk], [s.originator_version for s in chunk],
                    [s.topic for s in chunk], [s.event_version for s in chunk],
                    [s.state for s in chunk], metas, refs, items)).fetchone()["first"]
            except Exception as error:
                raise _translated(error) from None
            positions += range(first, first + len(chunk))
        return positions

    def select_events(self, originator_id: UUID | str) -> list[LogEntry]:
        return [_entry(row) for row in self.conn.execute(
            SQL("SELECT {0} FROM {1} WHERE aggregate_id = %s ORDER BY aggregate_version").format(
                _COLUMNS, self.log._log), (originator_id,)).fetchall()]

    def existing_ids(self, ids: list[UUID]) -> set[UUID]:
        found: set[UUID] = set()
        statement = SQL("SELECT DISTINCT aggregate_id FROM {0} WHERE aggregate_id = ANY(%s)"
                        ).format(self.log._log)
        for start in range(0, len(ids), 500):
            rows = self.conn.execute(statement, (ids[start:start + 500],)).fetchall()
            found |= {row["aggregate_id"] for row in rows}
        return found

    def positions_of(self, ref: str) -> list[int]:
        return [row["position"] for row in self.conn.execute(
            SQL("SELECT position FROM {0} WHERE ref = %s ORDER BY position").format(
                self.log._refs), (ref,)).fetchall()]

    def entry(self, position: int) -> LogEntry | None:
        row = self.conn.execute(SQL("SELECT {0} FROM {1} WHERE position = %s").format(
            _COLUMNS, self.log._log), (position,)).fetchone()
        return _entry(row) if row else None


def _translated(error: Exception) -> Exception:
    """psycopg's errors for a busy or read-only store, as the ledger's; others unchanged."""
    import psycopg
    from eventsourcing.persistence import IntegrityError

    first_line = (str(error).splitlines() or [""])[0]  # without the server's CONTEXT lines
    if isinstance(error, psycopg.errors.LockNotAvailable):
        return StoreBusy(first_line)
    if isinstance(error, psycopg.errors.InsufficientPrivilege
                  | psycopg.errors.ReadOnlySqlTransaction):
        return StoreReadOnly(first_line)
    if isinstance(error, psycopg.IntegrityError):
        return IntegrityError(str(error))
    return error
