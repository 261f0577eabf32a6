"""Shared fixtures: a fresh SQLite store per test and builders of command lines."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest
from stdnum import luhn

from commands.handlers import UnitOfWork, adopt_tariff_schedule
from commands.importer import import_lines
from commands.store import open_store
from ledger.tariffs import load_schedule

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
    line = {
        "id": cid(), "type": "register_customer", "customer": customer,
        "name": f"Commune de {customer.title()}", "siret": siret(sum(map(ord, customer)) * 7919),
        "category": "commune", "population": 1200,
    }
    return {**line, **fields}


def sign(domain: str = "lanvenec.fr", customer: str = "lanvenec", **fields: Any) -> dict[str, Any]:
    line = {
        "id": cid(), "type": "sign_order", "order": "BC-26-001", "customer": customer,
        "domain": domain, "storage_gb": 25, "extra_gb_packs": [10],
        "signed_on": "2026-03-12", "received_on": "2026-03-17",
    }
    return {**line, **fields}


def activate(domain: str = "lanvenec.fr", on: str = "2026-04-02", **fields: Any) -> dict[str, Any]:
    return {"id": cid(), "type": "activate", "domain": domain, "activated_on": on, **fields}


def add_storage(domain: str = "lanvenec.fr", **fields: Any) -> dict[str, Any]:
    line = {
        "id": cid(), "type": "add_storage", "order": "BC-26-014", "domain": domain,
        "extra_gb_packs": [10], "signed_on": "2026-10-28", "received_on": "2026-11-01",
    }
    return {**line, **fields}


def terminate(domain: str = "lanvenec.fr", on: str = "2027-06-15", **fields: Any) -> dict[str, Any]:
    return {"id": cid(), "type": "request_termination", "domain": domain, "received_on": on,
            **fields}


def jsonl(*commands: dict[str, Any]) -> list[str]:
    return [orjson.dumps(c).decode() for c in commands]


@pytest.fixture
def store(tmp_path):
    return str(tmp_path / "ledger.sqlite3")


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
    return open_ledger(store)


@pytest.fixture
def apply(app):
    """Import command dicts into the test store, as one file."""

    def apply(*commands: dict[str, Any]):
        return import_lines(app, jsonl(*commands), source="test.jsonl")

    return apply
