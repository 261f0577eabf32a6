"""Importing command files: validation, all-or-nothing, idempotency."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest

from commands import importer
from commands.importer import ImportRejected, import_file, import_lines
from eventstore.app import open_store
from ledger.errors import LedgerError
from projections.history import customers_known_at, subscription_known_at
from tests.conftest import (
    MEGALIS_2026,
    activate,
    add_storage,
    jsonl,
    register,
    sign,
    siret,
    terminate,
)

ROOT = Path(__file__).resolve().parent.parent


def stored_event_count(app) -> int:
    return app.recorder.max_notification_id() or 0


@pytest.fixture
def baseline(app) -> int:
    """Events already in the store before a test imports anything (the adopted schedule)."""
    return stored_event_count(app)


def rejected(app, *commands, lines=None) -> list[tuple[int, str]]:
    with pytest.raises(ImportRejected) as caught:
        import_lines(app, lines if lines is not None else jsonl(*commands), source="bad.jsonl")
    return [(e.line, e.message) for e in caught.value.errors]


def test_a_valid_file_is_applied(app, apply):
    report = apply(register(), sign(), activate(), add_storage(), terminate())
    assert (report.applied, report.skipped) == (5, 0)
    subscription = subscription_known_at(app, "lanvenec.fr")
    contract = subscription.current
    assert contract.activated_on.isoformat() == "2026-04-02"
    assert contract.extra_gb == 20
    assert contract.termination_received_on.isoformat() == "2027-06-15"


def test_importing_the_same_file_twice_appends_nothing(app, apply):
    commands = (register(), sign(), activate())
    apply(*commands)
    before = stored_event_count(app)
    report = apply(*commands)
    assert (report.applied, report.skipped, report.events) == (0, 3, 0)
    assert stored_event_count(app) == before


def test_same_id_with_other_content_is_refused(app, apply):
    first = register()
    apply(first)
    errors = rejected(app, {**first, "population": 1300})
    assert errors == [(1, (f"id {first['id']!r} was already used for another command "
                          "(register_customer) with different content"))]


def test_same_id_twice_in_one_file_with_other_content_is_refused(app):
    first = register()
    errors = rejected(app, first, {**first, "name": "Autre"})
    assert [line for line, _ in errors] == [2]


def test_whitespace_and_key_order_do_not_change_the_content(app, apply):
    first = register()
    apply(first)
    reordered = orjson.dumps(dict(reversed(first.items())), option=orjson.OPT_INDENT_2)
    report = import_lines(app, ["  " + reordered.decode().replace("\n", " ") + "  "])
    assert report.skipped == 1


def test_one_bad_line_stores_nothing_of_the_file(app, baseline):
    errors = rejected(app, register(), sign(), activate(on="2026-02-30"))
    assert errors[0][0] == 3
    assert "activated_on" in errors[0][1] and "2026-02-30" in errors[0][1]
    assert stored_event_count(app) == baseline


def test_every_bad_line_is_reported_with_its_number(app):
    errors = rejected(
        app, register(siret="21787789332870"), register("b", category="mairie"), register("c")
    )
    assert [line for line, _ in errors] == [1, 2]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "x", "type": "activate", "domain": "a.fr"', "not valid JSON"),
        ('[1, 2]', "expected a JSON object"),
        ('{"id": "x", "type": "cancel", "domain": "a.fr"}', "unknown command type \"cancel\""),
        ('{"id": "x", "type": "activate", "domain": "a.fr", "activated_on": "2026-04-02", "by": "me"}',
         "unknown field 'by' for activate"),
        ('{"id": "x", "type": "activate", "domain": "a.fr"}', "missing field 'activated_on'"),
        ('{"type": "activate", "domain": "a.fr", "activated_on": "2026-04-02"}', "missing field 'id'"),
        ('{"id": "x", "domain": "a.fr"}', "missing field 'type'"),
        ('{"id": "x", "type": "activate", "domain": "not a domain", "activated_on": "2026-04-02"}',
         "is not a domain name"),
        ('{"id": "x", "type": "activate", "domain": "a.fr", "activated_on": "12/03/2026"}',
         "expected a date written YYYY-MM-DD"),
    ],
)
def test_malformed_lines(app, line, message):
    errors = rejected(app, lines=[line])
    assert errors[0][0] == 1
    assert message in errors[0][1]


@pytest.mark.parametrize("end", ["\n", "\r\n"])
def test_a_json_error_in_a_file_names_its_column(app, tmp_path, end):
    # A file's lines are parsed with their end of line: a closing brace missing is reported
    # at the end of the line, not at column 1 of a next line.
    path = tmp_path / "bad.jsonl"
    cut = '{"id": "x", "type": "activate", "domain": "a.fr", "activated_on": "2026-04-02"'
    path.write_bytes(f'{cut}{end}{{"id": "y", "type": x}}{end}{cut}'.encode())
    with pytest.raises(ImportRejected) as caught:
        import_file(app, path)
    messages = [(e.line, e.message) for e in caught.value.errors]
    assert messages[0][0] == 1 and "at the end of the line" in messages[0][1]
    assert messages[1][0] == 2 and "at column 21" in messages[1][1]  # the x
    # The last line, without an end of line: the end of the line is its next column.
    assert messages[2][0] == 3 and f"at column {len(cut) + 1}" in messages[2][1]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"siret": "21787789332870"}, "wrong check digit"),
        ({"siret": "2178778933287"}, "must have 14 digits"),
        ({"siret": "2178778933287A"}, "must contain only digits"),
        ({"category": "mairie"}, "category must be one of commune, ccas, cias, epci, syndicat, departement, region, other_public, company, association"),
        ({"population": 0}, "at least 1 inhabitant"),
        ({"population": "1200"}, "expected a whole number"),
        ({"customer": "Lanvénec!"}, "is not a valid customer key"),
        # Its Luhn sum is 0, so python-stdnum takes it; the PES V2 schema does not.
        ({"siret": "00000000000000"}, "SIRET '00000000000000' is all zeros"),
        ({"siret": "000 000 000 00000"}, "is all zeros"),
        # \d would take them: a postcode of full-width digits, stored then exported.
        ({"address": {"line1": "Mairie", "postcode": "２９０００", "city": "Lanvénec"}},
         "postcode must have 5 digits (0-9), got '２９０００'"),
    ],
)
def test_invalid_customer_fields(app, fields, message):
    errors = rejected(app, register(**fields))
    assert message in errors[0][1]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"storage_gb": 30}, ("unknown storage tier 30 GB: schedule megalis-suite-territoriale-2026 "
                             "in force on 2026-03-17 offers 25, 50, 100, 150, 200 GB")),
        ({"extra_gb_packs": [15]}, ("unknown extra-storage pack 15 GB: schedule "
                                   "megalis-suite-territoriale-2026 in force on 2026-03-17 offers 10, 20, 50 GB")),
        ({"storage_gb": 0}, "expected a number of GB"),
        ({"extra_gb_packs": 10}, "expected a list of pack sizes"),
        ({"signed_on": "2026-03-18"}, "received_on 2026-03-17 is before signed_on 2026-03-18"),
        ({"received_on": "2029-01-02", "signed_on": "2029-01-01"}, "after the end of the offer"),
        ({"customer": "nobody"}, "unknown customer 'nobody'"),
    ],
)
def test_invalid_orders(app, fields, message):
    errors = rejected(app, register(), sign(**fields))
    assert errors[0][0] == 2
    assert message in errors[0][1]


def test_ineligible_customer_is_refused(app):
    errors = rejected(app, register(category="epci", population=15001), sign())
    assert errors == [(2, ("customer 'lanvenec' is not eligible for the Suite Territoriale: "
                          "the offer is reserved for epci or cias of at most 15 000 inhabitants (it has 15 001)"))]


def test_second_order_form_for_a_running_domain_is_refused(app, apply):
    apply(register(), sign(), activate())
    errors = rejected(app, sign(order="BC-26-099", received_on="2026-05-01", signed_on="2026-05-01"))
    assert "already has order form BC-26-001" in errors[0][1]
    assert "add_storage" in errors[0][1]


def test_domain_can_be_ordered_again_once_its_subscription_has_ended(app, apply):
    apply(register(), sign(), activate(), terminate(on="2027-06-15"))  # service ends 2027-08-31
    errors = rejected(app, sign(order="BC-27-050", signed_on="2027-08-20", received_on="2027-08-31"))
    assert "has not ended by 2027-08-31" in errors[0][1]
    apply(sign(order="BC-27-050", signed_on="2027-09-01", received_on="2027-09-01"))
    assert [c.order for c in subscription_known_at(app, "lanvenec.fr").contracts] == [
        "BC-26-001", "BC-27-050"]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (activate(domain="unknown.fr"), "no order form for domain 'unknown.fr'"),
        (activate(on="2026-03-16"), "activated_on 2026-03-16 is before order form BC-26-001 was received"),
        (terminate(), "has not been activated"),
        (add_storage(domain="unknown.fr"), "no order form for domain 'unknown.fr'"),
        (add_storage(received_on="2026-03-01", signed_on="2026-03-01"), "before the domain's order form"),
        (add_storage(extra_gb_packs=[]), "at least one pack is needed"),
    ],
)
def test_commands_against_the_order_form(app, apply, command, message):
    apply(register(), sign())
    errors = rejected(app, command)
    assert message in errors[0][1]


def test_activation_happens_once(app, apply):
    apply(register(), sign(), activate())
    assert "already activated on 2026-04-02" in rejected(app, activate(on="2026-05-01"))[0][1]


def test_termination_before_activation_date_is_refused(app, apply):
    apply(register(), sign(), activate())
    assert "before the activation date 2026-04-02" in rejected(app, terminate(on="2026-04-01"))[0][1]


def test_termination_happens_once(app, apply):
    apply(register(), sign(), activate(), terminate())
    assert "already received on 2027-06-15" in rejected(app, terminate(on="2027-07-01"))[0][1]


def test_no_storage_added_after_a_termination_request(app, apply):
    apply(register(), sign(), activate(), terminate())
    errors = rejected(app, add_storage(signed_on="2027-07-01", received_on="2027-07-02"))
    assert "no storage can be added" in errors[0][1]


def test_customer_registered_twice_is_refused(app, apply):
    apply(register())
    assert "already registered" in rejected(app, register(name="Autre"))[0][1]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"siret": "00000000000000"},
         "field 'siret': SIRET '00000000000000' is all zeros: no establishment has this number"),
        ({"vat_number": "FR12000000000"},
         "field 'vat_number': 'FR12000000000' is not a valid intra-community VAT number: its "
         "SIREN is all zeros"),
    ],
)
def test_an_operator_numbered_with_zeros_is_refused(app, baseline, fields, message):
    operator = {"id": "op", "type": "register_operator", "name": "Syndicat mixte",
                "siret": siret(2535053), "vat_number": "FR70253505358",
                "address": {"line1": "1 rue X", "postcode": "35000", "city": "Rennes"}}
    assert rejected(app, {**operator, **fields}) == [(1, message)]
    assert stored_event_count(app) == baseline


def test_a_date_of_full_width_digits_is_a_format_error(app):
    errors = rejected(app, register(), sign(signed_on="２０２６-03-12"))
    assert errors == [(2, "field 'signed_on': expected a date written YYYY-MM-DD, "
                          "got '２０２６-03-12'")]


# One domain, one canonical form (R2) -----------------------------------------------------------

LANVENEC = "lanvénec.fr"
#: The same domain: its punycode (ASCII) form, upper case, é decomposed (e + U+0301).
SPELLINGS = ["xn--lanvnec-eya.fr", "XN--LANVNEC-EYA.FR", "LANVÉNEC.FR", "lanve\u0301nec.fr"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_domain_however_written_is_subscribed_once(app, baseline, spelling):
    errors = rejected(app, register(), sign(LANVENEC, order="BC-1"), sign(spelling, order="BC-2"))
    assert errors == [(3, f"domain {LANVENEC!r} already has order form BC-1 (received "
                          "2026-03-17) and its subscription has not ended by 2026-03-17; one "
                          "order form per domain name — more storage goes through add_storage")]
    assert stored_event_count(app) == baseline


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_domain_is_stored_in_its_unicode_form(app, apply, spelling):
    """The form accented domains always had in the store, so that its subscription keeps its
    aggregate id: every spelling reaches it."""
    apply(register(), sign(spelling, order="BC-1"), activate(spelling))
    subscription = subscription_known_at(app, LANVENEC)
    assert subscription.domain == LANVENEC
    assert subscription.current.activated_on.isoformat() == "2026-04-02"
    apply(terminate(SPELLINGS[(SPELLINGS.index(spelling) + 1) % len(SPELLINGS)]))
    assert subscription_known_at(app, LANVENEC).current.termination_received_on is not None


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        ("xn--zz.fr", "'xn--zz.fr' is not a domain name: 'xn--zz' is not valid punycode"),
        # Valid punycode, but of "lanvÉnec": an xn-- label stands for a lower-case one.
        ("xn--lanvnec-2qa.fr", "'xn--lanvnec-2qa' is not valid punycode"),
        ("xn--abc-.fr", "'xn--abc-' is not valid punycode"),  # "abc", which is written abc
        ("a÷b.fr", "'a÷b.fr' is not a domain name: '÷' (U+00F7) is not allowed in it"),
        ("xn--ls8h.fr", "'xn--ls8h.fr' is not a domain name: '\U0001f4a9' (U+1F4A9) is not "
                        "allowed in it"),
        ("é" * 60 + ".fr", "longer than DNS allows once written in ASCII"),
    ],
)
def test_a_domain_that_is_none_is_refused_saying_why(app, baseline, domain, message):
    errors = rejected(app, register(), sign(domain, order="BC-1"))
    assert errors[0][0] == 2
    assert errors[0][1].startswith(f"field 'domain': {domain!r} is not a domain name: ")
    assert message in errors[0][1]
    assert stored_event_count(app) == baseline


# Pipes, and files that change while they are imported -------------------------------------------

def _recorded_sources(app, baseline) -> set[str]:
    """The ``source`` recorded with every entry after ``baseline``."""
    return {orjson.dumps(orjson.loads(app.recorder.entry(position).metadata)["source"]).decode()
            for position in range(baseline + 1, stored_event_count(app) + 1)}


def _source(name: str, content: bytes) -> set[str]:
    return {orjson.dumps({"file": name, "sha256": hashlib.sha256(content).hexdigest()}).decode()}


def _serve(fifo: Path, first: bytes, then: bytes, stop: threading.Event,
           after: threading.Event | None = None) -> threading.Thread:
    """A writer giving ``first`` to the first reader of ``fifo``, then ``then`` to every other
    reader (once ``after`` is set) until ``stop`` is set."""
    def serve() -> None:
        fifo.write_bytes(first)  # waits for a reader
        if after is not None:
            after.wait(10)
        while not stop.wait(0.01):
            try:
                out = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # no reader
                continue
            try:
                os.write(out, then)
            except BrokenPipeError:
                pass
            finally:
                os.close(out)

    writer = threading.Thread(target=serve, daemon=True)
    writer.start()
    return writer


needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")


@needs_fifo
def test_a_pipe_is_imported_and_the_hash_of_what_it_gave_recorded(app, baseline, tmp_path):
    content = ("\n".join(jsonl(register(), sign(), activate())) + "\n").encode()
    fifo = tmp_path / "commands.jsonl"
    os.mkfifo(fifo)
    stop = threading.Event()
    writer = _serve(fifo, content, b"", stop)  # then only empty reads, as a pipe gives
    try:
        report = import_file(app, fifo)
    finally:
        stop.set()
        writer.join(10)
    assert (report.applied, report.lines) == (3, 3)
    assert subscription_known_at(app, "lanvenec.fr").current.activated_on.isoformat() == \
        "2026-04-02"
    assert _recorded_sources(app, baseline) == _source(str(fifo), content)  # its whole path


def test_a_subscription_recorded_under_its_xn_spelling_by_an_earlier_version_is_found(
        app, apply):
    # Earlier versions took xn-- labels as written: such a subscription has the id of that
    # spelling. Named in any spelling now, it is found, and R2 still holds against a second.
    import attrs

    from commands.handlers import handle
    from commands.messages import parse_line
    from commands.unit_of_work import UnitOfWork
    from projections.timeline import history

    apply(register())
    legacy = "xn--lanvnec-eya.fr"
    uow = UnitOfWork(app)
    command = parse_line(orjson.dumps(sign(domain="lanvénec.fr")).decode()).command
    handle(attrs.evolve(command, domain=legacy), uow)  # as the earlier version recorded it
    app.save(*uow.changed())
    assert subscription_known_at(app, "lanvénec.fr").domain == legacy
    apply(activate(domain="LANVÉNEC.FR"))
    assert subscription_known_at(app, legacy).current.activated_on.isoformat() == "2026-04-02"
    with pytest.raises(ImportRejected, match=f"domain {legacy!r} already has order form"):
        apply(sign(domain="lanvénec.fr", order="BC-2"))  # R2: one running order form
    assert len(history(app, "lanvénec.fr")) == 3


@needs_fifo
def test_a_pipe_imported_in_a_terminal_is_not_read_to_count_its_lines(app, store, tmp_path,
                                                                     capsys, monkeypatch):
    # With a terminal, `ledger import` counts a file's lines for its progress bar first: read
    # that way, a pipe was empty for the import ("0 command(s) applied", exit 0).
    from cli.main import main

    content = ("\n".join(jsonl(register(), sign())) + "\n").encode()
    fifo = tmp_path / "commands.jsonl"
    os.mkfifo(fifo)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    stop = threading.Event()
    writer = _serve(fifo, content, b"", stop)
    try:
        assert main(["--store", store, "import", str(fifo)]) == 0
    finally:
        stop.set()
        writer.join(10)
    assert "2 command(s) applied" in capsys.readouterr().out
    assert subscription_known_at(app, "lanvenec.fr") is not None


@needs_fifo
def test_a_fifo_is_read_once_whatever_it_serves_next(app, baseline, tmp_path, monkeypatch):
    first = ("\n".join(jsonl(register("first"))) + "\n").encode()
    then = ("\n".join(jsonl(register("then"))) + "\n").encode()
    fifo = tmp_path / "commands.jsonl"
    os.mkfifo(fifo)
    read, stop = threading.Event(), threading.Event()
    real = importer._syntax

    def syntax(*args, **kwargs):
        try:
            return real(*args, **kwargs)
        finally:
            read.set()  # pass 1 done: from now on the FIFO serves another file

    monkeypatch.setattr(importer, "_syntax", syntax)
    writer = _serve(fifo, first, then, stop, after=read)
    try:
        report = import_file(app, fifo)
    finally:
        stop.set()
        writer.join(10)
    assert report.applied == 1
    assert list(customers_known_at(app)) == ["first"]  # "then" was never read
    assert _recorded_sources(app, baseline) == _source(str(fifo), first)


@pytest.mark.parametrize(
    "change",
    [
        lambda text: text + "\n".join(jsonl(register("d"))) + "\n",  # a line added
        lambda text: text.replace('"population":1200', '"population":1300', 1),  # same length
    ],
    ids=["grown", "rewritten"],
)
def test_a_file_changed_between_the_two_passes_stores_nothing(app, baseline, tmp_path,
                                                               monkeypatch, change):
    monkeypatch.setattr(importer, "BATCH", 2)  # some lines saved before the change is seen
    monkeypatch.setattr(importer, "FLUSH", 2)
    path = tmp_path / "letters.jsonl"
    text = "\n".join(jsonl(register("a"), register("b"), register("c"))) + "\n"
    path.write_text(text, encoding="utf-8")
    changed = change(text)
    assert changed != text
    real = importer._apply

    def apply_after_a_change(*args, **kwargs):
        path.write_text(changed, encoding="utf-8")  # the same file, rewritten in place
        return real(*args, **kwargs)

    monkeypatch.setattr(importer, "_apply", apply_after_a_change)
    with pytest.raises(LedgerError) as caught:
        import_file(app, path)
    assert str(caught.value) == \
        f"{path} changed while it was being imported: nothing was stored"
    assert stored_event_count(app) == baseline


def test_the_command_line_imports_from_its_standard_input(tmp_path):
    """``cat file.jsonl | ledger import /dev/stdin``: what the pipe gave is stored."""
    store = str(tmp_path / "piped.sqlite3")
    content = "\n".join(jsonl(register(), sign(), activate())) + "\n"

    def ledger(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cli.main", "--store", store, *argv],
                              input=stdin, capture_output=True, text=True, cwd=ROOT,
                              timeout=120)

    assert ledger("tariff", "adopt", str(MEGALIS_2026)).returncode == 0
    done = ledger("import", "/dev/stdin", stdin=content)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("/dev/stdin: 3 command(s) applied, 0 already applied; ")
    shown = ledger("subscription", "lanvenec.fr", "--as-of", "2026-05-01", "--json")
    assert orjson.loads(shown.stdout)["activated_on"] == "2026-04-02"


def test_import_file_reports_a_missing_file(app, tmp_path):
    with pytest.raises(LedgerError, match="file not found"):
        import_file(app, tmp_path / "missing.jsonl")


def test_import_file_reports_a_non_utf8_file(app, tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"name": "Lanvénec"}'.encode("latin-1"))
    with pytest.raises(LedgerError, match="line 1: not UTF-8 text: byte 0xE9 at column 15"):
        import_file(app, path)


def test_orders_need_a_schedule_in_force(store):
    bare = open_store(store)  # no schedule adopted
    errors = rejected(bare, register(), sign())
    assert errors[0][0] == 2
    assert "no tariff schedule of the Suite Territoriale is in force on 2026-03-17" in errors[0][1]
    assert "ledger tariff adopt" in errors[0][1]


def test_blank_lines_are_ignored(app):
    report = import_lines(app, ["", *jsonl(register()), "   "])
    assert report.applied == 1


def test_a_receipt_built_directly_is_the_one_the_library_builds(app):
    """Imports build each line's receipt without the library's generic construction
    (:meth:`CommandReceipt.applied`): the same aggregate, the same pending event, the same
    stored entry, the same receipt folded back from the log."""
    from eventstore.app import fold
    from ledger.receipt import CommandReceipt

    made = CommandReceipt(command_id="c-42", digest="ab" * 32, command_type="sign_order")
    direct = CommandReceipt.applied("c-42", "ab" * 32, "sign_order")
    timestamps = {"_created_on", "_modified_on", "timestamp"}

    def state(obj):
        return {k: v for k, v in vars(obj).items() if k not in timestamps | {"_pending_events"}}

    assert type(direct) is CommandReceipt and state(direct) == state(made)
    assert direct.id == made.id and direct.version == made.version == 1
    assert direct.created_on == direct.modified_on == direct.pending_events[0].timestamp
    [event], [expected] = direct.pending_events, made.pending_events
    assert type(event) is type(expected)
    assert state(event) == state(expected)
    assert app.mapper.to_stored_event(event) == app.mapper.to_stored_event(expected)
    app.save(direct)
    folded = fold([app.mapper.to_domain_event(e) for e in app.recorder.select_events(direct.id)])
    assert state(folded) == state(made)


# One JSON line read by orjson or by the standard parser: always the standard parser's value.

def _standard(text: str):
    import json

    from commands.messages import _no_duplicates, _refuse_constant
    from ledger.errors import InvalidCommand

    try:
        return json.loads(text, object_pairs_hook=_no_duplicates,
                          parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise InvalidCommand(f"not valid JSON ({error.msg} at column {error.colno})") from None


def _read_both(text: str):
    """(value or error message) by the importer's reading and by the standard parser alone."""
    import json

    from commands.messages import _json_object
    from ledger.errors import InvalidCommand

    outcomes = []
    for read in (_json_object, _standard):
        try:
            value = read(text)
            # the value with the type of each number (1 and 1.0 are equal in Python)
            outcomes.append(("value", value, json.dumps(value, sort_keys=True)))
        except InvalidCommand as error:
            outcomes.append(("error", str(error), None))
    return outcomes


@pytest.mark.parametrize("text", [
    '{"id": "a", "type": "sign_order", "id": "b"}',                  # a key twice
    '{"id": "a", "x": {"k": 1, "k": 2}}',                            # twice in a nested object
    '{"id": "a", "x": [{"k": 1}, {"k": 2}]}',                        # the same key in two objects
    '{"id": "k", "k": 1}',                                           # a key that is also a value
    '{"id": "a", "population": 123456789012345678901234567890}',    # beyond 64 bits
    '{"id": "a", "population": 1e400}',
    '{"id": "a", "population": NaN}',
    '{"id": "a", "population": -Infinity}',
    '{"id": "a", "population": 12.50}',
    '{"id": "a", "n\\u0061me": "x", "name": "y"}',                   # a key twice, escaped once
    '{"id": "a\\u0000"}',
    '{"id": "a\tb"}',                                                # a raw tab in a text
    '{"id": "a"',
    '{"id": "a"} x',
    '[{"id": "a"}]',
    '{"": 1, "id": ""}',
    '{"id": "é", "name": "Mairie de Lanvénec 🏛"}',
])
def test_a_line_reads_as_the_standard_parser_reads_it(text):
    ours, standard = _read_both(text)
    assert ours == standard


def test_a_line_reads_as_the_standard_parser_reads_it_generated():
    import json

    from hypothesis import given, settings
    from hypothesis import strategies as st

    keys = st.sampled_from(["id", "type", "name", "k", "", "n\\u0061me", "é"])
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                        st.sampled_from(["1.5", "1e400", "NaN", "-0.0", "0"]),
                        st.text(max_size=4).map(lambda s: orjson.dumps(s).decode()),
                        st.sampled_from(['"k"', '"id"', '"a\\"b"', '"\\u00e9"']))

    def rendered(draw_value):
        return draw_value.map(lambda v: v if isinstance(v, str) else json.dumps(v))

    leaves = rendered(scalars)
    values = st.recursive(leaves, lambda inner: st.one_of(
        st.lists(st.tuples(keys, inner), max_size=4).map(
            lambda pairs: "{" + ", ".join(f'"{k}": {v}' for k, v in pairs) + "}"),
        st.lists(inner, max_size=3).map(lambda items: "[" + ",".join(items) + "]")),
        max_leaves=8)

    @settings(max_examples=300, deadline=None)
    @given(values)
    def check(text):
        ours, standard = _read_both(text)
        assert ours == standard

    check()


def test_a_plain_line_is_read_by_orjson_and_a_doubtful_one_by_the_standard_parser(monkeypatch):
    """The standard parser is only asked about lines orjson's reading could differ on (the
    importer's speed depends on it; what both read is compared above)."""
    import json

    from commands import messages
    from tests.conftest import jsonl, register

    asked = []
    standard = json.loads

    def watched(text, **options):
        asked.append(text)
        return standard(text, **options)

    monkeypatch.setattr(messages.json, "loads", watched)
    [line] = jsonl(register("lanvenec"))
    assert messages.parse_line(line).type == "register_customer" and asked == []
    for doubtful in ('{"id": "a", "id": "b"}', '{"id": "a\\u0062"}', '{"id": "a", "n": 1.5}',
                     '{"id": "a", "n": 123456789012345678901234567890}'):
        asked.clear()
        try:
            messages._json_object(doubtful)
        except LedgerError:  # the duplicated key is refused, by the standard parser
            pass
        assert asked == [doubtful]


def test_a_line_nested_hundreds_of_levels_deep_is_a_bad_line_not_a_traceback(app, baseline):
    deep = 1000  # orjson reads up to 1 024 levels; walking them would exhaust Python's stack
    line = ('{"id": "a", "type": "register_customer", "customer": "x", "address": '
            + "[" * deep + "]" * deep + "}")
    assert rejected(app, lines=[line]) == [
        (1, "nested too deeply: a command's fields hold objects and lists a few levels deep, "
            "not hundreds")]
    assert stored_event_count(app) == baseline


@pytest.mark.parametrize("change, message", [
    ({"type": []}, "field 'type': expected text, got []"),
    ({"type": {"a": 1}}, "field 'type': expected text, got {\"a\":1}"),
    ({"type": 10**40}, "field 'type': expected text, got 1000000000000000000000000000000000000..."),
    ({"population": 10**40},
     "field 'population': 1000000000000000000000000000000000000... is too large a number"),
    ({"population": -(2**63)}, "field 'population': -9223372036854775808 is too large a number"),
    ({"name": 10**40},
     "field 'name': expected non-empty text, got 1000000000000000000000000000000000000..."),
])
def test_a_type_that_is_not_text_or_a_number_beyond_64_bits_is_a_bad_line(app, baseline, change,
                                                                          message):
    import json

    from tests.conftest import register

    line = json.dumps({**register("x1"), **change})  # orjson does not write such integers
    assert rejected(app, lines=[line]) == [(1, message)]
    assert stored_event_count(app) == baseline


def test_a_pack_beyond_64_bits_is_a_bad_line(app, apply):
    import json

    from tests.conftest import register, sign

    apply(register())
    assert rejected(app, lines=[json.dumps(sign(extra_gb_packs=[10**40]))]) == [
        (1, "field 'extra_gb_packs': 1000000000000000000000000000000000000... is too large a "
            "number")]


def test_the_garbage_collector_is_paused_while_an_import_runs_and_restored_after(app):
    """An import pauses Python's cyclic collector (its full collections walked every object
    the import held: a quarter of a million-event import) and gives it back as it found it,
    whether the import succeeds or is refused, and however many imports overlap."""
    import gc

    from commands.importer import _collector_paused

    seen: list[bool] = []
    assert gc.isenabled()
    import_lines(app, jsonl(register("gc-a")), on_line=lambda: seen.append(gc.isenabled()))
    assert seen == [False] and gc.isenabled()
    with pytest.raises(ImportRejected):
        import_lines(app, ['{"id": "x", "type": "activate"}'],
                     on_line=lambda: seen.append(gc.isenabled()))
    assert seen == [False, False] and gc.isenabled()
    with _collector_paused():  # overlapping imports: the collector comes back after the last
        with _collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:  # a program that turned the collector off keeps it off
        import_lines(app, jsonl(register("gc-b")))
        assert not gc.isenabled()
    finally:
        gc.enable()
