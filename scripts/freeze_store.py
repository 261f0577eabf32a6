"""Write the frozen store of tests/data/ (run once per log format; never to "fix" a test).

    python scripts/freeze_store.py tests/data/frozen-store-v1.sqlite3

It builds a ledger touching every event type — the operator, two barèmes, the demo's
customers and letters, a billing run, a late termination and its correction (credit
note and new invoice), a signing key, checkpoints and a monthly closing — and writes,
beside it, what today's code derives from it (``.json``): charges, states and every
document's hash. tests/test_frozen_store.py replays the file under the current code and
must find exactly that: a change that cannot read what was stored before fails there.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import date
from pathlib import Path

import orjson
from freezegun import freeze_time

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from commands.audit import checkpoint, close_period, keygen  # noqa: E402
from commands.billing import bill, invoicing_state  # noqa: E402
from commands.corrections import apply_correction, proposals  # noqa: E402
from commands.handlers import adopt_tariff_schedule  # noqa: E402
from commands.importer import import_file, import_lines  # noqa: E402
from commands.unit_of_work import UnitOfWork  # noqa: E402
from eventstore.app import open_store  # noqa: E402
from ledger.tariff_parser import load_schedule  # noqa: E402

EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.jsonl"))
AS_OF = ["2026-06-30", "2027-03-31", "2027-12-31", "2028-12-31"]
DOMAINS = {"lanvenec.fr": "2027-07-01", "cc-broceliande.bzh": "2027-07-01",
           "ccas-treveneuc.fr": "2028-02-01", "ploerdut.fr": "2028-06-01",
           "kerlouan.fr": "2027-06-01"}
LATE = [
    {"id": "ker-1", "type": "register_customer", "customer": "kerlouan",
     "name": "Commune de Kerlouan", "siret": "21290093000018", "category": "commune",
     "population": 2150, "address": {"line1": "Place de la Mairie", "postcode": "29890",
                                     "city": "Kerlouan"}},
    {"id": "ker-2", "type": "sign_order", "order": "BC-26-044", "customer": "kerlouan",
     "domain": "kerlouan.fr", "storage_gb": 50, "extra_gb_packs": [20],
     "signed_on": "2026-02-10", "received_on": "2026-02-16"},
    {"id": "ker-3", "type": "activate", "domain": "kerlouan.fr", "activated_on": "2026-03-02"},
]
TERMINATION = [{"id": "ker-4", "type": "request_termination", "domain": "kerlouan.fr",
                "received_on": "2027-01-31"}]


def expectations(app) -> dict:
    from projections.charges import charges_as_of
    from projections.history import known_at, subscription_known_at
    from projections.status import status_as_of

    known = known_at(app)
    return {
        "entries": app.position(),
        "charges": {day: [c.to_json() for c in charges_as_of(known, date.fromisoformat(day))]
                    for day in AS_OF},
        "states": {domain: status_as_of(subscription_known_at(app, domain), domain,
                                        date.fromisoformat(day)).to_json()
                   for domain, day in DOMAINS.items()},
        "documents": {number: invoicing_state(app).digests[number]
                      for number in invoicing_state(app).documents},
    }


def main(out: Path) -> None:
    if out.exists():
        sys.exit(f"{out} exists: the frozen store is written once; remove it knowingly")
    app = open_store(str(out))
    with freeze_time("2026-01-05T09:00:00Z"):
        uow = UnitOfWork(app)
        adopt_tariff_schedule(load_schedule(ROOT / "catalogues"
                                            / "megalis-suite-territoriale-2026.toml"), uow)
        app.save(*uow.changed(), metadata={"actor": "freeze", "via": "tariff adopt"})
    with freeze_time("2026-03-20T09:00:00Z"):
        for path in EXAMPLES:
            import_file(app, path, by="freeze")
        import_lines(app, [orjson.dumps(c).decode() for c in LATE], "late.jsonl", by="freeze")
    with freeze_time("2026-12-20T09:00:00Z"):
        uow = UnitOfWork(app)
        adopt_tariff_schedule(load_schedule(ROOT / "tests" / "data"
                                            / "megalis-revision-2027.toml"), uow)
        app.save(*uow.changed(), metadata={"actor": "freeze", "via": "tariff adopt"})
    with freeze_time("2027-03-05T09:00:00Z"):
        bill(app, date(2027, 3, 1), date(2027, 3, 5), by="freeze")
    with freeze_time("2027-03-12T10:00:00Z"):
        import_lines(app, [orjson.dumps(c).decode() for c in TERMINATION], "letters.jsonl",
                     by="freeze")
    with freeze_time("2027-03-15T10:00:00Z"):
        for proposal in proposals(app):
            apply_correction(app, proposal.id, "freeze", date(2027, 3, 15))
    with tempfile.TemporaryDirectory() as folder, freeze_time("2027-04-02T08:00:00Z"):
        signer = keygen(app, Path(folder) / "frozen.key", "frozen.example/ledger", "freeze")
        checkpoint(app, signer, "freeze")
        close_period(app, "2027-03", signer, date(2027, 4, 2), "freeze")
    app.close()
    app = open_store(str(out))
    out.with_suffix(".json").write_bytes(
        orjson.dumps(expectations(app), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        + b"\n")
    print(f"{out}: {app.position()} entries; expectations in {out.with_suffix('.json')}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
