"""The HTTP API's writes: ``POST /commands``, ``/billing-runs``, ``/corrections/{id}/apply``.

Each is the same service as its CLI command, one transaction, and idempotent: every write needs
an ``Idempotency-Key``; the first successful answer is recorded in the write's own transaction
(``api.request_answered``) and replayed for a repeat with the same key and the same request.
"""

import hashlib
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any
from urllib.parse import unquote

import orjson
from fastapi import FastAPI, Header, Request
from fastapi.responses import Response

from ledger.access import ApiRequest, request_id
from web.responses import Problem, json_answer, limited_body

#: Given a write's answer (status, body), the idempotency record to save in the write's own
#: transaction (none for a failure or a dry run, which are not replayed).
Remember = Callable[[int, Any], list[Any]]


def add_write_routes(api: FastAPI, ledger: Any, Writer: Any) -> None:
    """The write routes, for the server's ``ledger`` and its writers' dependency ``Writer``
    (no ``from __future__ import annotations`` here: FastAPI reads these routes' annotations)."""

    async def _idempotent(request: Request, key: str | None, who: tuple[str, str],
                          work: Callable[[bytes, Remember], tuple[int, Any]]) -> Response:
        if not key:
            raise Problem(400, "Idempotency-Key required", "every write needs an "
                          "Idempotency-Key header (a unique value per operation, reused when "
                          "it is retried)", "idempotency-key-missing")
        if len(key) > 255:
            raise Problem(400, "Bad request", "Idempotency-Key: at most 255 characters",
                          "bad-request")
        body = await _body(request)
        fingerprint = hashlib.sha256(request.method.encode() + b" " +
                                     request.url.path.encode() + b"\n" + body).hexdigest()
        with ledger.flight_lock:
            if key in ledger.in_flight:
                raise Problem(409, "In flight", "a request with this Idempotency-Key is being "
                              "processed: retry later", "idempotency-in-flight")
            ledger.in_flight.add(key)
        try:
            import anyio

            return await anyio.to_thread.run_sync(
                lambda: _answer(ledger, key, fingerprint, request, body, work))
        finally:
            with ledger.flight_lock:
                ledger.in_flight.discard(key)

    Key = Annotated[str | None, Header(alias="Idempotency-Key")]
    Actor = Annotated[str | None, Header(alias="Ledger-Actor")]
    Reason = Annotated[str | None, Header(alias="Ledger-Reason")]
    Comment = Annotated[str | None, Header(alias="Ledger-Comment")]

    @api.post("/commands", tags=["writes"], status_code=201)
    async def post_commands(request: Request, who: Writer, idempotency_key: Key = None,
                            actor: Actor = None, reason: Reason = None,
                            comment: Comment = None) -> Response:
        """One command (a JSON object) or a JSON Lines body (`application/x-ndjson`), all or
        nothing, exactly as `ledger import`."""
        from commands.importer import import_lines

        def answer(report) -> tuple[int, Any]:
            return 201, {"applied": report.applied, "already_applied": report.skipped,
                         "events": report.events}

        actor, reason, comment = _headers(actor, reason, comment)

        def work(body: bytes, remember: Remember) -> tuple[int, Any]:
            lines = _command_lines(request.headers.get("content-type", ""), body)
            return answer(import_lines(
                ledger.app, lines, source="the request", by=actor or who[0],
                origin={"file": "POST /commands"}, via="api",
                extra=_note(who, reason, comment, idempotency_key),
                also=lambda report: remember(*answer(report))))
        return await _idempotent(request, idempotency_key, who, work)

    @api.post("/billing-runs", tags=["writes"], status_code=201)
    async def post_billing_run(request: Request, who: Writer, idempotency_key: Key = None,
                               actor: Actor = None, reason: Reason = None,
                               comment: Comment = None) -> Response:
        """`ledger bill`: `{"through": "2027-03-31", "issue_date": …, "in_advance": false,
        "dry_run": false}`."""
        from commands.billing import bill

        def answer(report) -> tuple[int, Any]:
            return (200 if report.dry_run else 201), {
                "dry_run": report.dry_run,
                "issued": [{"number": d["number"], "customer": d["buyer"]["customer"],
                            "total_ht": d["total_ht"]} for d in report.issued],
                "skipped": [{"customer": s.customer, "reason": s.reason} for s in
                            report.skipped]}

        actor, reason, comment = _headers(actor, reason, comment)

        def work(body: bytes, remember: Remember) -> tuple[int, Any]:
            data = _object(body, {"through", "issue_date", "in_advance", "dry_run"})
            through = _date(data, "through", required=True)
            issued_on = _date(data, "issue_date") or date.today()
            return answer(bill(ledger.app, through, issued_on, by=actor or who[0],
                               in_advance=_flag(data, "in_advance"),
                               dry_run=_flag(data, "dry_run"),
                               note=_note(who, reason, comment, idempotency_key),
                               also=lambda report: remember(*answer(report))))
        return await _idempotent(request, idempotency_key, who, work)

    @api.post("/corrections/{proposal}/apply", tags=["writes"], status_code=201)
    async def post_correction(proposal: str, request: Request, who: Writer,
                              idempotency_key: Key = None, actor: Actor = None,
                              reason: Reason = None, comment: Comment = None) -> Response:
        """`ledger corrections apply ID`: `{"issue_date": …}`."""
        from commands.corrections import apply_correction

        def answer(issued: list[dict[str, Any]]) -> tuple[int, Any]:
            return 201, {"issued": [{"number": d["number"], "kind": d["kind"],
                                     "total_ht": d["total_ht"]} for d in issued]}

        actor, reason, comment = _headers(actor, reason, comment)

        def work(body: bytes, remember: Remember) -> tuple[int, Any]:
            data = _object(body, {"issue_date"}) if body.strip() else {}
            return answer(apply_correction(
                ledger.app, proposal, actor or who[0], _date(data, "issue_date") or date.today(),
                note=_note(who, reason, comment, idempotency_key),
                also=lambda issued: remember(*answer(issued))))
        return await _idempotent(request, idempotency_key, who, work)


#: The largest body of ``POST /commands`` (a file larger than this goes through ``ledger
#: import``, which streams it), and of the other writes (a few fields).
COMMANDS_BODY = 64 << 20
OTHER_BODY = 64 << 10
#: What each write's body may be sent as.
COMMAND_TYPES = ("application/json", "application/x-ndjson", "application/jsonl")


async def _body(request: Request) -> bytes:
    """The body of a write, refused before it is parsed (or, when its length is announced,
    before it is read) if it is not of a type the route reads — 415 — or larger than the
    route takes — 413."""
    commands = request.url.path == "/commands"
    limit = COMMANDS_BODY if commands else OTHER_BODY
    accepted = COMMAND_TYPES if commands else COMMAND_TYPES[:1]
    announced = request.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > limit:
        raise Problem(413, "Body too large", f"{request.url.path} takes at most {limit} bytes"
                      + (" (import larger files with `ledger import`, which streams them)"
                         if commands else ""), "body-too-large")
    body = await limited_body(request, limit)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body.strip() and kind and kind not in accepted:
        raise Problem(415, "Unsupported media type", f"a body sent as {kind!r} is not read "
                      f"here: send it as {' or '.join(accepted)}", "unsupported-media-type")
    return body


#: The longest reason or comment a write may carry (the actor's limit is the CLI's).
NOTE_SIZE = 2000


def _headers(actor: str | None, reason: str | None, comment: str | None
             ) -> tuple[str | None, str | None, str | None]:
    """The ``Ledger-Actor``, ``Ledger-Reason`` and ``Ledger-Comment`` headers as recorded, or a
    400 naming the header. A header carries ASCII: other characters are sent percent-encoded
    in UTF-8 (``Mme%20Le%20Gu%C3%A9vel``) and decoded here (raw, they would arrive as the
    latin-1 reading of their bytes and be recorded garbled for good); control characters and
    oversize values are refused, as on the command line."""
    from commands.provenance import ACTOR_SIZE

    def text(value: str | None, header: str, size: int) -> str | None:
        if value is None:
            return None
        problem = None
        if any(not " " <= c <= "~" for c in value):
            problem = ("printable ASCII only: write other characters percent-encoded in UTF-8 "
                       "(%C3%A9 for é)")
        else:
            try:
                value = unquote(value, errors="strict")
            except UnicodeDecodeError:
                problem = "its percent-encoded bytes are not UTF-8"
            else:
                if not value.isprintable():
                    problem = "control characters are not allowed"
                elif len(value) > size:
                    problem = f"at most {size} characters (got {len(value)})"
        if problem:
            raise Problem(400, "Bad request", f"{header} header: {problem}", "bad-request")
        return value.strip() or None

    return (text(actor, "Ledger-Actor", ACTOR_SIZE), text(reason, "Ledger-Reason", NOTE_SIZE),
            text(comment, "Ledger-Comment", NOTE_SIZE))


def _note(who: tuple[str, str], reason: str | None, comment: str | None,
          key: str | None) -> dict[str, Any]:
    return {k: v for k, v in {"token": who[0], "reason": reason, "comment": comment,
                              "idempotency_key": key}.items() if v}


def _answer(ledger: Any, key: str, fingerprint: str, request: Request, body: bytes,
            work: Callable[[bytes, Remember], tuple[int, Any]]) -> Response:
    """Replay the answer recorded for ``key``, or do the work and record its answer with it:
    the write and its idempotency record are committed together or not at all."""

    def remember(status: int, answer: Any) -> list[Any]:
        if status >= 300 or (isinstance(answer, dict) and answer.get("dry_run")):
            return []
        return [ApiRequest(key=key, fingerprint=fingerprint, method=request.method,
                           path=request.url.path, status=status, body=answer)]

    with ledger.lock:
        previous: ApiRequest | None = ledger.app.aggregate(request_id(key))
        if previous is not None:
            if previous.fingerprint != fingerprint:
                raise Problem(422, "Idempotency-Key reused", "this Idempotency-Key was used "
                              "for another request (method, path or body)",
                              "idempotency-key-reused")
            return json_answer(previous.body, ledger.app.position(), previous.status,
                               {"Idempotent-Replayed": "true"}, sort_keys=True)
        status, answer = work(body, remember)
        return json_answer(answer, ledger.app.position(), status, sort_keys=True)


def _command_lines(content_type: str, body: bytes) -> list[str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(400, "Bad request", "the body is not UTF-8", "bad-request") from None
    if not text.strip():
        raise Problem(400, "Bad request", "no command in the body", "bad-request")
    if "ndjson" in content_type or "jsonl" in content_type:
        return text.split("\n")
    return [text.strip().replace("\n", " ")]


def _object(body: bytes, keys: set[str]) -> dict[str, Any]:
    try:
        data = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError:
        raise Problem(400, "Bad request", "the body is not a JSON object", "bad-request") \
            from None
    if not isinstance(data, dict):
        raise Problem(400, "Bad request", "the body is not a JSON object", "bad-request")
    unknown = sorted(set(data) - keys)
    if unknown:
        raise Problem(422, "Invalid request", f"unknown field {unknown[0]!r} (expected "
                      f"{', '.join(sorted(keys))})", "invalid-request")
    return data


def _flag(data: dict[str, Any], name: str) -> bool:
    """A JSON true or false (absent: false). Not Python's truth: ``"false"`` is a text, and a
    run asked as ``"dry_run": "false"`` must not be taken as a dry run (nor the reverse)."""
    value = data.get(name, False)
    if type(value) is not bool:
        raise Problem(422, "Invalid request", f"{name}: expected true or false, got "
                      f"{orjson.dumps(value).decode()}", "invalid-request")
    return value


def _date(data: dict[str, Any], name: str, required: bool = False) -> date | None:
    from ledger.dates import parse_iso_date

    value = data.get(name)
    if value is None:
        if required:
            raise Problem(422, "Invalid request", f"{name} is required (YYYY-MM-DD)",
                          "invalid-request")
        return None
    try:
        return parse_iso_date(value)
    except (ValueError, TypeError) as error:
        raise Problem(422, "Invalid request", f"{name}: {error}", "invalid-request") from None


