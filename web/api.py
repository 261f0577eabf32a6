"""``ledger serve``: the HTTP API and the auditors' web view, over the same services as the CLI.

FastAPI (with uvicorn): typed parameters and an OpenAPI 3.1 document from the same code, a
mature ASGI server, and Jinja2 for the server-rendered web view (docs/api.md says more).

Every read takes ``as_of``, ``known_at`` or ``known_at_position`` and says which log position
its answer reflects (``Ledger-Position`` header, and an ``ETag``). Every write needs an
``Idempotency-Key``: the first successful answer is recorded in the ledger and replayed for a
repeat with the same key and the same body. Errors are RFC 9457 problem details.

One store per process, and one request at a time on it (a lock): the store's connection is not
shared between threads.
"""



import hashlib
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from commands import views
from eventstore.app import LedgerApplication, open_store
from ledger.access import Access, ApiRequest, access_id, request_id
from ledger.errors import LedgerError, UnknownCustomer, UnknownDomain
from projections.history import resolve

PROBLEM = "application/problem+json"
TYPES = "https://territorial-ledger.example/problems/"
#: Failed authentications a client may make in a minute before it is made to wait.
AUTH_FAILURES_PER_MINUTE = 10


class Problem(Exception):
    """An RFC 9457 problem: ``status``, a ``title``, the ``detail`` and extra members."""

    def __init__(self, status: int, title: str, detail: str, kind: str = "about:blank",
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.kind = status, title, detail, kind
        self.headers, self.extra = headers or {}, extra

    def response(self) -> JSONResponse:
        body = {"type": self.kind if self.kind == "about:blank" else TYPES + self.kind,
                "title": self.title, "status": self.status, "detail": self.detail, **self.extra}
        return JSONResponse(body, status_code=self.status, media_type=PROBLEM,
                            headers=self.headers)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "tl_" + secrets.token_urlsafe(32)


class Ledger:
    """The store a server serves, and what it keeps between requests."""

    def __init__(self, app: LedgerApplication) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.in_flight: set[str] = set()
        self.flight_lock = threading.Lock()
        self.failures: dict[str, deque[float]] = defaultdict(deque)

    def access(self) -> Access | None:
        return self.app.aggregate(access_id())


def horizon(ledger: Ledger, known_at: datetime | None, known_at_position: int | None) -> int:
    if known_at is not None and known_at_position is not None:
        raise Problem(400, "Bad request", "give known_at or known_at_position, not both",
                      "bad-request")
    if known_at_position is not None and known_at_position > ledger.app.position():
        raise Problem(400, "Bad request", f"the log has {ledger.app.position()} entries, not "
                      f"{known_at_position}", "bad-request")
    if known_at is not None and known_at.tzinfo is None:
        known_at = known_at.replace(tzinfo=UTC)  # UTC when no offset is given, as in the CLI
    return resolve(ledger.app, known_at_position if known_at_position is not None
                   else known_at)


def _json(data: Any, position: int, status: int = 200,
          headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"
    tag = f'"{position}-{hashlib.sha256(body).hexdigest()[:20]}"'
    return Response(body, status_code=status, media_type="application/json",
                    headers={"Ledger-Position": str(position), "ETag": tag, **(headers or {})})


def create_app(store: str | None = None, operator: str | None = None) -> FastAPI:
    ledger = Ledger(open_store(store, operator, create=False))
    api = FastAPI(
        title="territorial-ledger",
        summary="Event-sourced subscription ledger of a public digital-service operator",
        description="Reads take as_of, known_at or known_at_position; writes need an "
                    "Idempotency-Key. Authentication: Authorization: Bearer TOKEN "
                    "(`ledger token create`). Errors are RFC 9457 problem details. See "
                    "docs/api.md.",
        version="1",
    )
    api.state.ledger = ledger

    # Errors --------------------------------------------------------------------------------

    @api.exception_handler(Problem)
    async def _problem(request: Request, problem: Problem) -> JSONResponse:
        return problem.response()

    @api.exception_handler(LedgerError)
    async def _ledger_error(request: Request, error: LedgerError) -> JSONResponse:
        from commands.importer import ImportRejected

        if isinstance(error, (UnknownCustomer, UnknownDomain)):
            return Problem(404, "Not found", str(error), "not-found").response()
        if isinstance(error, ImportRejected):
            return Problem(422, "Commands refused", str(error).splitlines()[-1],
                           "commands-refused", errors=_line_errors(error)).response()
        text = str(error)
        if text.startswith("no ") and ("numbered" in text or "named" in text):
            return Problem(404, "Not found", text, "not-found").response()
        return Problem(422, "Refused", text, "refused").response()

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                  for e in error.errors()]
        return Problem(422, "Invalid request", "; ".join(
            f"{e['field']}: {e['message']}" for e in errors), "invalid-request",
            errors=errors).response()

    @api.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> JSONResponse:
        return Problem(error.status_code, str(error.detail), str(error.detail)).response()

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        return Problem(500, "Internal error", f"{type(error).__name__}: the request could not "
                       "be completed; nothing was recorded unless a write had answered",
                       "internal").response()

    # Authentication -----------------------------------------------------------------------

    def caller(request: Request,
               authorization: Annotated[str | None, Header()] = None) -> tuple[str, str]:
        """(token name, role) of the caller, from the bearer token or the web view's cookie."""
        client = request.client.host if request.client else "?"
        failures = ledger.failures[client]
        now = time.monotonic()
        while failures and now - failures[0] > 60:
            failures.popleft()
        if len(failures) >= AUTH_FAILURES_PER_MINUTE:
            raise Problem(429, "Too many failed authentications",
                          "wait a minute before trying again", "rate-limited",
                          headers={"Retry-After": "60"})
        token = None
        if authorization and authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
        elif request.cookies.get("ledger_token"):
            token = request.cookies["ledger_token"]
        if not token:
            raise Problem(401, "Authentication required", "give Authorization: Bearer TOKEN "
                          "(ledger token create)", "unauthenticated",
                          headers={"WWW-Authenticate": "Bearer"})
        with ledger.lock:
            access = ledger.access()
        found = access.role_of(token_hash(token)) if access is not None else None
        if found is None:
            failures.append(now)
            raise Problem(401, "Authentication failed", "unknown or revoked token",
                          "unauthenticated", headers={"WWW-Authenticate": "Bearer"})
        return found

    def writer(who: Annotated[tuple[str, str], Depends(caller)]) -> tuple[str, str]:
        if who[1] == "auditor":
            raise Problem(403, "Forbidden", "an auditor's token reads everything and writes "
                          "nothing", "forbidden")
        return who

    Reader = Annotated[tuple[str, str], Depends(caller)]
    Writer = Annotated[tuple[str, str], Depends(writer)]
    AsOf = Annotated[date | None, Query(description="business date (default: today)")]
    KnownAt = Annotated[datetime | None, Query(
        description="read the log as recorded at this time (ISO 8601)")]
    KnownAtPosition = Annotated[int | None, Query(ge=0, description="read the log up to "
                                                  "this position")]

    def run(work: Callable[[], Any]) -> Any:
        with ledger.lock:
            return work()

    # Reads ----------------------------------------------------------------------------------

    @api.get("/charges", tags=["reads"])
    def get_charges(who: Reader, as_of: AsOf = None, known_at: KnownAt = None,
                    known_at_position: KnownAtPosition = None, customer: str | None = None,
                    domain: str | None = None, uninvoiced: bool = False) -> Response:
        """`ledger charges --json`."""
        def work():
            upto = horizon(ledger, known_at, known_at_position)
            return _json(views.charges(ledger.app, as_of or date.today(), upto,
                                       customer=customer, domain=domain,
                                       uninvoiced=uninvoiced), upto)
        return run(work)

    @api.get("/subscriptions/{domain}", tags=["reads"])
    def get_subscription(domain: str, who: Reader, as_of: AsOf = None,
                         known_at: KnownAt = None,
                         known_at_position: KnownAtPosition = None) -> Response:
        """`ledger subscription DOMAIN --json`."""
        def work():
            upto = horizon(ledger, known_at, known_at_position)
            return _json(views.subscription(ledger.app, domain, as_of or date.today(), upto),
                         upto)
        return run(work)

    @api.get("/customers", tags=["reads"])
    def get_customers(who: Reader, known_at: KnownAt = None,
                      known_at_position: KnownAtPosition = None) -> Response:
        """`ledger customers --json`."""
        def work():
            upto = horizon(ledger, known_at, known_at_position)
            return _json(views.customers(ledger.app, upto), upto)
        return run(work)

    @api.get("/customers/{key}/history", tags=["reads"])
    def get_history(key: str, who: Reader, known_at: KnownAt = None,
                    known_at_position: KnownAtPosition = None) -> Response:
        """`ledger history KEY --json`."""
        def work():
            upto = horizon(ledger, known_at, known_at_position)
            return _json(views.history(ledger.app, key, upto), upto)
        return run(work)

    @api.get("/invoices", tags=["reads"])
    def get_invoices(who: Reader, known_at: KnownAt = None,
                     known_at_position: KnownAtPosition = None) -> Response:
        """`ledger invoices list --json`."""
        def work():
            upto = horizon(ledger, known_at, known_at_position)
            return _json(views.invoices(ledger.app, upto), upto)
        return run(work)

    @api.get("/invoices/{number}", tags=["reads"])
    def get_invoice(number: str, who: Reader,
                    format: Annotated[str | None, Query(pattern="^(facturx|pdf|pes)$")] = None
                    ) -> Response:
        """`ledger invoice show NUMBER --json`; `?format=facturx` (or `pdf`) the Factur-X
        PDF/A-3, `?format=pes` the piece of the PES file that carried it."""
        def work():
            position = ledger.app.position()
            if format is None:
                return _json(views.invoice(ledger.app, number), position)
            return _download(ledger.app, number, format, position)
        return run(work)

    @api.get("/invoices/{number}/explain", tags=["reads"])
    def get_explanation(number: str, who: Reader) -> Response:
        """`ledger explain NUMBER --json`: the bases de la liquidation."""
        def work():
            return _json(views.explain(ledger.app, number), ledger.app.position())
        return run(work)

    @api.get("/forecast", tags=["reads"])
    def get_forecast(who: Reader,
                     start: Annotated[str, Query(alias="from", pattern=r"^\d{4}-(0[1-9]|1[0-2])$")],
                     end: Annotated[str, Query(alias="to", pattern=r"^\d{4}-(0[1-9]|1[0-2])$")],
                     by: Annotated[str, Query(pattern="^(month|year)$")] = "month",
                     group: Annotated[str | None, Query(pattern="^(customer|line|category)$")]
                     = None,
                     assume: Annotated[str, Query(pattern="^(renew|notice-given|end-of-term)$")]
                     = "renew",
                     customer: str | None = None, known_at: KnownAt = None,
                     known_at_position: KnownAtPosition = None) -> Response:
        """`ledger forecast --json`."""
        if end < start:
            raise Problem(400, "Bad request", f"to {end} is before from {start}", "bad-request")

        def work():
            upto = horizon(ledger, known_at, known_at_position)
            return _json(views.forecast(ledger.app, start, end, upto, by=by, key=group,
                                        assume=assume, customer=customer), upto)
        return run(work)

    @api.get("/audit/checkpoint", tags=["audit"])
    def get_checkpoint(who: Reader) -> Response:
        """The latest signed checkpoint (C2SP tlog-checkpoint, signed note)."""
        from commands.audit import latest_checkpoint

        def work():
            from commands.audit import AuditError

            try:
                note = latest_checkpoint(ledger.app)
            except AuditError as error:
                raise Problem(404, "Not found", str(error), "not-found") from None
            return Response(note, media_type="text/plain; charset=utf-8",
                            headers={"Ledger-Position": str(ledger.app.position())})
        return run(work)

    @api.get("/audit/proof/{number}", tags=["audit"])
    def get_proof(number: str, who: Reader) -> Response:
        """The inclusion proof of a document against the latest checkpoint covering it."""
        from commands.audit import proof_json, prove_document

        def work():
            return _json(proof_json(prove_document(ledger.app, number)), ledger.app.position())
        return run(work)

    # Writes ---------------------------------------------------------------------------------

    async def _idempotent(request: Request, key: str | None, who: tuple[str, str],
                          work: Callable[[bytes], tuple[int, Any]]) -> Response:
        if not key:
            raise Problem(400, "Idempotency-Key required", "every write needs an "
                          "Idempotency-Key header (a unique value per operation, reused when "
                          "it is retried)", "idempotency-key-missing")
        if len(key) > 255:
            raise Problem(400, "Bad request", "Idempotency-Key: at most 255 characters",
                          "bad-request")
        body = await request.body()
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
                lambda: _answer(ledger, key, fingerprint, request, body, who, work))
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

        def work(body: bytes) -> tuple[int, Any]:
            lines = _command_lines(request.headers.get("content-type", ""), body)
            report = import_lines(ledger.app, lines, source="the request",
                                  by=actor or who[0], origin={"file": "POST /commands"},
                                  via="api", extra=_note(who, reason, comment,
                                                         idempotency_key))
            return 201, {"applied": report.applied, "already_applied": report.skipped,
                         "events": report.events}
        return await _idempotent(request, idempotency_key, who, work)

    @api.post("/billing-runs", tags=["writes"], status_code=201)
    async def post_billing_run(request: Request, who: Writer, idempotency_key: Key = None,
                               actor: Actor = None, reason: Reason = None,
                               comment: Comment = None) -> Response:
        """`ledger bill`: `{"through": "2027-03-31", "issue_date": …, "in_advance": false,
        "dry_run": false}`."""
        from commands.billing import bill

        def work(body: bytes) -> tuple[int, Any]:
            data = _object(body, {"through", "issue_date", "in_advance", "dry_run"})
            through = _date(data, "through", required=True)
            issued_on = _date(data, "issue_date") or date.today()
            report = bill(ledger.app, through, issued_on, by=actor or who[0],
                          in_advance=bool(data.get("in_advance", False)),
                          dry_run=bool(data.get("dry_run", False)),
                          note=_note(who, reason, comment, idempotency_key))
            return (200 if report.dry_run else 201), {
                "dry_run": report.dry_run,
                "issued": [{"number": d["number"], "customer": d["buyer"]["customer"],
                            "total_ht": d["total_ht"]} for d in report.issued],
                "skipped": [{"customer": s.customer, "reason": s.reason} for s in
                            report.skipped]}
        return await _idempotent(request, idempotency_key, who, work)

    @api.post("/corrections/{proposal}/apply", tags=["writes"], status_code=201)
    async def post_correction(proposal: str, request: Request, who: Writer,
                              idempotency_key: Key = None, actor: Actor = None,
                              reason: Reason = None, comment: Comment = None) -> Response:
        """`ledger corrections apply ID`: `{"issue_date": …}`."""
        from commands.corrections import apply_correction

        def work(body: bytes) -> tuple[int, Any]:
            data = _object(body, {"issue_date"}) if body.strip() else {}
            issued = apply_correction(ledger.app, proposal, actor or who[0],
                                      _date(data, "issue_date") or date.today(),
                                      note=_note(who, reason, comment, idempotency_key))
            return 201, {"issued": [{"number": d["number"], "kind": d["kind"],
                                     "total_ht": d["total_ht"]} for d in issued]}
        return await _idempotent(request, idempotency_key, who, work)

    from web.view import add_routes

    add_routes(api, ledger, caller)

    @api.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/ui/")

    return api


def _note(who: tuple[str, str], reason: str | None, comment: str | None,
          key: str | None) -> dict[str, Any]:
    return {k: v for k, v in {"token": who[0], "reason": reason, "comment": comment,
                              "idempotency_key": key}.items() if v}


def _answer(ledger: Ledger, key: str, fingerprint: str, request: Request, body: bytes,
            who: tuple[str, str], work: Callable[[bytes], tuple[int, Any]]) -> Response:
    from commands.unit_of_work import record

    with ledger.lock:
        previous: ApiRequest | None = ledger.app.aggregate(request_id(key))
        if previous is not None:
            if previous.fingerprint != fingerprint:
                raise Problem(422, "Idempotency-Key reused", "this Idempotency-Key was used "
                              "for another request (method, path or body)",
                              "idempotency-key-reused")
            return _json(previous.body, ledger.app.position(), previous.status,
                         {"Idempotent-Replayed": "true"})
        status, answer = work(body)
        if status < 300 and not (isinstance(answer, dict) and answer.get("dry_run")):
            request_record = ApiRequest(key=key, fingerprint=fingerprint, method=request.method,
                                path=request.url.path, status=status, body=answer)
            record(ledger.app, request_record, via="api", by=who[0], idempotency_key=key)
        return _json(answer, ledger.app.position(), status)


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


def _line_errors(error: Exception) -> list[dict[str, Any]]:
    import re

    errors = []
    for line in str(error).splitlines():
        found = re.match(r"^.*?, line (\d+): (.*)$", line)
        if found:
            errors.append({"line": int(found.group(1)), "message": found.group(2)})
    return errors


def _download(app: LedgerApplication, number: str, form: str, position: int) -> Response:
    from commands.verification import document_entry

    entry, fields = document_entry(app, number)
    if form == "pes":
        from exports.dossier import _pes_piece

        piece = _pes_piece(app, number)
        if piece is None:
            raise Problem(404, "Not found", f"{number} was not sent in a PES file yet",
                          "not-found")
        return Response(piece[0], media_type="application/xml",
                        headers={"Ledger-Position": str(position),
                                 "Content-Disposition": f'attachment; filename="{number}.pes.xml"'})
    from exports.explain import etat_liquidatif, explain_document
    from exports.invoice_pdf import facturx_pdf

    document = fields["document"]
    refers = document.get("refers_to")
    preceding = None
    if refers and not document.get("refers_to_issued_on"):
        preceding = document_entry(app, refers)[1]["document"]["issued_on"]
    pdf = facturx_pdf(document, fields["digest"], refers_to_issued_on=preceding,
                      supporting=etat_liquidatif(explain_document(app, number)))
    return Response(pdf, media_type="application/pdf",
                    headers={"Ledger-Position": str(position),
                             "Content-Disposition": f'attachment; filename="{number}.pdf"'})


def serve(store: str | None, operator: str | None, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(create_app(store, operator), host=host, port=port, log_level="info")

