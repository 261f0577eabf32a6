"""PostgreSQL specifics: an append-only event table, writers serialised on a lock table, no pipeline.

The library serialises writers with ``LOCK TABLE events IN EXCLUSIVE MODE``,
which PostgreSQL only grants to roles holding UPDATE, DELETE or TRUNCATE on that
table. To REVOKE all three from the writer role, the lock is taken on a
dedicated one-row table instead; every ledger writer uses this recorder, so the
effect (commit order = notification order) is the same.

Inserts are sent without psycopg's pipeline mode: with a large batch (an import
of ten thousand subscriptions, 73 000 events in one statement) the pipeline was
seen to deadlock here — the client waiting in ``Pipeline.sync``, the server in
``ClientRead`` — with both the Python and the binary psycopg 3.3.9
(psycopg/psycopg#685 describes the same symptom). They are also sent in chunks,
so that no statement keeps the transaction waiting on the client for long.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier, Literal


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.write_lock_table = f"{events_table_name}_write_lock"
        schema = Identifier(self.datastore.schema)
        self.sql_create_statements.append(
            SQL("CREATE TABLE IF NOT EXISTS {0}.{1} (id int PRIMARY KEY)").format(
                schema, Identifier(self.write_lock_table)))
        self.lock_table_statements = [
            SQL("SET LOCAL lock_timeout = '{0}s'").format(self.datastore.lock_timeout),
            SQL("LOCK TABLE {0}.{1} IN EXCLUSIVE MODE").format(
                schema, Identifier(self.write_lock_table)),
        ]

    #: Events per INSERT statement. One statement for a whole 73 000-event import kept the
    #: transaction idle on the server while the client adapted the parameter, for longer than
    #: the library's idle-in-transaction timeout (5 s), which then killed it.
    INSERT_CHUNK = 5_000

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The library's insert (lock, notify, insert … RETURNING) in one plain transaction,
        in statements of at most ``INSERT_CHUNK`` events."""
        with self.datastore.get_connection() as conn, conn.transaction():
            with conn.cursor() as curs:
                self._insert_events(curs, stored_events, **kwargs)
            notification_ids: list[int] = []
            with conn.cursor() as curs:
                for start in range(0, len(stored_events), self.INSERT_CHUNK):
                    chunk = stored_events[start:start + self.INSERT_CHUNK]
                    self._insert_stored_events(curs, chunk, **kwargs)
                    notification_ids += self._fetch_ids_after_insert_events(curs, chunk, **kwargs)
            return notification_ids


def writer_role(schema: str) -> str:
    return f"{schema}_writer"


def initialise(app, schema: str, events_table: str) -> list[str]:
    """Create the schema's protection and writer role. Returns what was done, for the user.

    ``schema`` and ``events_table`` come from validated names; they are still
    passed as identifiers, never pasted into SQL.
    """
    role = writer_role(schema)
    s, table = Identifier(schema), Identifier(events_table)
    lock = Identifier(f"{events_table}_write_lock")
    sequence = Identifier(f"{events_table}_notification_id_seq")
    statements = [
        SQL("CREATE OR REPLACE FUNCTION {0}.ledger_refuse_rewrite() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
            "'the ledger history is append-only: % on %.% refused', "
            "TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME; END $$").format(s),
        SQL("DROP TRIGGER IF EXISTS ledger_append_only ON {0}.{1}").format(s, table),
        SQL("CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON {0}.{1} "
            "FOR EACH ROW EXECUTE FUNCTION {0}.ledger_refuse_rewrite()").format(s, table),
        SQL("DROP TRIGGER IF EXISTS ledger_no_truncate ON {0}.{1}").format(s, table),
        SQL("CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON {0}.{1} "
            "FOR EACH STATEMENT EXECUTE FUNCTION {0}.ledger_refuse_rewrite()").format(s, table),
        SQL("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {0}) THEN "
            "CREATE ROLE {1} LOGIN; END IF; END $$").format(Literal(role), Identifier(role)),
        SQL("REVOKE ALL ON SCHEMA {0} FROM PUBLIC").format(s),
        SQL("GRANT USAGE ON SCHEMA {0} TO {1}").format(s, Identifier(role)),
        SQL("REVOKE ALL ON {0}.{1} FROM PUBLIC, {2}").format(s, table, Identifier(role)),
        SQL("GRANT SELECT, INSERT ON {0}.{1} TO {2}").format(s, table, Identifier(role)),
        SQL("GRANT USAGE, SELECT ON SEQUENCE {0}.{1} TO {2}").format(s, sequence, Identifier(role)),
        SQL("GRANT SELECT, UPDATE ON {0}.{1} TO {2}").format(s, lock, Identifier(role)),
        # Durability: a commit returns only once it is on disk, whatever the server default.
        SQL("ALTER ROLE {0} SET synchronous_commit = on").format(Identifier(role)),
    ]
    with app.recorder.datastore.get_connection() as conn, conn.transaction():
        for statement in statements:
            conn.execute(statement)
    return [
        (f"schema {schema} with table {events_table}: UPDATE, DELETE and TRUNCATE refused by "
        "trigger for every role"),
        f"role {role}: may SELECT and INSERT events, UPDATE/DELETE/TRUNCATE revoked",
    ]


def init_operator(config) -> list[str]:
    """What ``ledger db init`` does for one operator: schema, tables, protection, writer role.

    ``config`` is a PostgreSQL :class:`commands.store.StoreConfig` reached with an
    administrator's URL. Safe to run again. Returns what was done, for the user.
    """
    from commands.store import EVENTS_TABLE, open_store

    create_schema(config.env, config.schema)
    admin = open_store(config, create=True)
    try:
        return initialise(admin, config.schema, EVENTS_TABLE)
    finally:
        admin.close()


def create_schema(config_env: dict[str, str], schema: str) -> None:
    """CREATE SCHEMA IF NOT EXISTS, before the library creates its tables in it."""
    import psycopg

    with psycopg.connect(
        dbname=config_env["POSTGRES_DBNAME"], host=config_env["POSTGRES_HOST"],
        port=config_env["POSTGRES_PORT"], user=config_env["POSTGRES_USER"],
        password=config_env["POSTGRES_PASSWORD"] or None, connect_timeout=10, autocommit=True,
    ) as conn:
        conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(Identifier(schema)))


def settings(app) -> dict[str, str]:
    """Server settings that matter for durability and what the ledger runs on."""
    with app.recorder.datastore.get_connection() as conn:
        version = conn.execute("SHOW server_version").fetchone()
        commit = conn.execute("SHOW synchronous_commit").fetchone()
        fsync = conn.execute("SHOW fsync").fetchone()
        user = conn.execute("SELECT current_user").fetchone()
    value = (lambda row: str(next(iter(row.values()))) if isinstance(row, dict) else str(row[0]))
    return {"server_version": value(version), "synchronous_commit": value(commit),
            "fsync": value(fsync), "connected_as": value(user)}
