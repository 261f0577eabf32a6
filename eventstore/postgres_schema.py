"""What ``ledger db init`` creates for an operator on PostgreSQL, run as an administrator: the
schema, the log and its triggers (position, recorded time and leaf set by the database; UPDATE,
DELETE and TRUNCATE refused), the append and ANALYZE functions, the writer role and its grants.
Safe to run again. The runtime side (appending, reading) is :mod:`eventstore.postgres`."""

from __future__ import annotations

from typing import Any

from psycopg.sql import SQL, Identifier, Literal

from eventstore.log import FORMAT

LOG, REFS, TREE, META, LOCK = "ledger_log", "ledger_refs", "ledger_tree", "ledger_meta", \
    "ledger_write_lock"
APPEND_ARGS = "uuid[], integer[], text[], integer[], bytea[], bytea[], text[], integer[]"
TRIGGERS = ("ledger_append_only", "ledger_assign", "ledger_no_truncate")
_TIME_FORMAT = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"


def writer_role(schema: str) -> str:
    return f"{schema}_writer"


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


def create_operator(config_env: dict[str, str], schema: str,
                    parameters: dict[str, str] | None = None) -> list[str]:
    """Create (or update) an operator's schema, log, protection and writer role.
    ``parameters``: libpq's, from the store URL's query (``sslmode`` …)."""
    import psycopg

    with psycopg.connect(
        dbname=config_env["POSTGRES_DBNAME"], host=config_env["POSTGRES_HOST"],
        port=config_env["POSTGRES_PORT"], user=config_env["POSTGRES_USER"],
        password=config_env["POSTGRES_PASSWORD"] or None,
        **{"connect_timeout": 10, **(parameters or {})},
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


def init_operator(config: Any) -> list[str]:
    """What ``ledger db init`` does for one operator (``config``: a PostgreSQL
    :class:`eventstore.config.StoreConfig` reached with an administrator's URL). Safe to run again.
    Returns what was done, for the user."""
    return create_operator(config.env, config.schema, config.parameters)
