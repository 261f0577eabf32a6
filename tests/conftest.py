"""Shared fixtures: a fresh SQLite store per test and builders of command lines."""

from __future__ import annotations

import hashlib
import itertools
import os
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from stdnum import luhn

from commands.handlers import adopt_tariff_schedule
from commands.importer import import_lines
from commands.unit_of_work import UnitOfWork
from eventstore.app import open_store
from ledger.tariff_parser import load_schedule

_ids = itertools.count(1)


def siret(n: int) -> str:
    """A valid SIRET built from a number: a SIREN with its Luhn key, a NIC, the SIRET's key."""
    siren = f"2{n % 10**7:07d}"
    siren += luhn.calc_check_digit(siren)
    body = siren + "0001"
    return body + luhn.calc_check_digit(body)


def cid() -> str:
    return f"t{next(_ids)}"


def register(customer: str = "lanvenec", **fields: Any) -> dict[str, Any]:
    """A register_customer line; a field given as None is left out."""
    line = {
        "id": cid(), "type": "register_customer", "customer": customer,
        "name": f"Commune de {customer.title()}",
        "siret": siret(int(hashlib.sha256(customer.encode()).hexdigest()[:12], 16)),
        "category": "commune", "population": 1200,
        "address": {"line1": "Place de la Mairie", "postcode": "29000",
                    "city": customer.title()},
    }
    return {k: v for k, v in {**line, **fields}.items() if v is not None}


def sign(domain: str = "lanvenec.fr", customer: str = "lanvenec", **fields: Any) -> dict[str, Any]:
    # Each order form has its own reference; lanvenec.fr's is the example's.
    order = "BC-26-001" if domain == "lanvenec.fr" else f"BC-{domain}"
    line = {
        "id": cid(), "type": "sign_order", "order": order, "customer": customer,
        "domain": domain, "storage_gb": 25, "extra_gb_packs": [10],
        "signed_on": "2026-03-12", "received_on": "2026-03-17",
    }
    return {**line, **fields}


def activate(domain: str = "lanvenec.fr", on: str = "2026-04-02", **fields: Any) -> dict[str, Any]:
    return {"id": cid(), "type": "activate", "domain": domain, "activated_on": on, **fields}


def add_storage(domain: str = "lanvenec.fr", **fields: Any) -> dict[str, Any]:
    line = {
        "id": cid(), "type": "add_storage", "order": f"BC-S{next(_ids)}", "domain": domain,
        "extra_gb_packs": [10], "signed_on": "2026-10-28", "received_on": "2026-11-01",
    }
    return {**line, **fields}


def terminate(domain: str = "lanvenec.fr", on: str = "2027-06-15", **fields: Any) -> dict[str, Any]:
    return {"id": cid(), "type": "request_termination", "domain": domain, "received_on": on,
            **fields}


def jsonl(*commands: dict[str, Any]) -> list[str]:
    return [orjson.dumps(c).decode() for c in commands]


POSTGRES_ADMIN = os.environ.get("LEDGER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_unavailable() -> str | None:
    """Why the PostgreSQL tests cannot run here, or ``None`` if they can."""
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN, connect_timeout=3):
            return None
    except Exception as error:  # noqa: BLE001 - any reason is reported as the skip reason
        return f"no PostgreSQL at {POSTGRES_ADMIN} ({type(error).__name__}: {error})".strip()


def need_postgres() -> None:
    reason = postgres_unavailable()
    if reason is None:
        return
    if os.environ.get("LEDGER_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"LEDGER_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


def postgres_operator(monkeypatch) -> tuple[str, str]:
    """A fresh operator schema initialised with `ledger db init`; returns (writer URL, operator)."""
    from eventstore import postgres_schema as pgstore
    from eventstore.config import store_config

    operator = f"t{uuid.uuid4().hex[:12]}"
    config = store_config(POSTGRES_ADMIN, operator)
    _SCHEMAS.append(config.schema)
    pgstore.init_operator(config)
    monkeypatch.setenv("LEDGER_OPERATOR", operator)
    role = pgstore.writer_role(config.schema)
    return POSTGRES_ADMIN.replace("postgres@", f"{role}@", 1), operator


_SCHEMAS: list[str] = []


def drop_postgres_schemas() -> None:
    import psycopg
    from psycopg.sql import SQL, Identifier

    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        while _SCHEMAS:
            schema = _SCHEMAS.pop()
            conn.execute(SQL("DROP SCHEMA IF EXISTS {0} CASCADE").format(Identifier(schema)))
            conn.execute(SQL("DROP ROLE IF EXISTS {0}").format(Identifier(f"{schema}_writer")))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    return request.param


@pytest.fixture
def store(backend, tmp_path, monkeypatch):
    """A fresh store: a SQLite file, or a PostgreSQL operator schema reached as its writer role."""
    monkeypatch.delenv("LEDGER_OPERATOR", raising=False)
    if backend == "sqlite":
        yield str(tmp_path / "ledger.sqlite3")
        return
    need_postgres()
    url, _ = postgres_operator(monkeypatch)
    yield url
    drop_postgres_schemas()


ROOT = Path(__file__).resolve().parent.parent
MEGALIS_2026 = ROOT / "catalogues" / "megalis-suite-territoriale-2026.toml"


def adopt(app, path: str | Path = MEGALIS_2026) -> bool:
    """Adopt a catalogue file in the store, as ``ledger tariff adopt`` does."""
    uow = UnitOfWork(app)
    adopted = adopt_tariff_schedule(load_schedule(path), uow)
    app.save(*uow.changed())
    return adopted


def open_ledger(path: str):
    """A store with the Suite Territoriale 2026 schedule adopted, as the demo sets it up."""
    app = open_store(path)
    adopt(app)
    return app


@pytest.fixture
def app(store):
    ledger = open_ledger(store)
    yield ledger
    ledger.close()


@pytest.fixture
def apply(app):
    """Import command dicts into the test store, as one file."""

    def apply(*commands: dict[str, Any]):
        return import_lines(app, jsonl(*commands), source="test.jsonl")

    return apply

#: The Suite Territoriale's last day, as the 2026 barème states it (« jusqu'au 31/12/2028 »).
CONTRACT_END = __import__("datetime").date(2028, 12, 31)
