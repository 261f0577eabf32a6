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

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BeforeValidator

from commands import views
from eventstore.app import LedgerApplication, open_store
from ledger.access import Access, access_id
from projections.history import resolve
from web.responses import Problem, add_error_handlers, json_answer
from web.writes import add_write_routes

#: Failed authentications a client may make in a minute before it is made to wait.
AUTH_FAILURES_PER_MINUTE = 10
#: Clients remembered before those without a failure in the last minute are forgotten (each
#: address a client gives — X-Forwarded-For from a proxy on this host — was kept for good).
FAILING_CLIENTS = 1000


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


def _iso_date(value: Any) -> Any:
    """A business date as YYYY-MM-DD, and only so (the default reading would take a number for
    a Unix time: ``as_of=1798761600`` was 2027-01-01, ``as_of=0`` 1970)."""
    from ledger.dates import parse_iso_date

    return parse_iso_date(value) if isinstance(value, str) else value


def _iso_moment(value: Any) -> Any:
    """A recorded time in ISO 8601 (``2027-03-01T10:00:00Z``), not a number of seconds."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a time in ISO 8601 "
                             "(YYYY-MM-DDTHH:MM:SS, with an offset or Z)") from None
    return value


def _only_known_query(request: Request) -> None:
    """A query parameter the route does not take is refused, naming it: a misspelt
    ``known_at_positon`` must not answer as of today as if it had been understood."""
    route = request.scope.get("route")
    if route is None or not hasattr(route, "dependant") or \
            not getattr(route, "include_in_schema", True):
        return  # the web view's pages read their own parameters

    def names(dependant: Any) -> set[str]:
        found = {param.alias for param in dependant.query_params}
        for sub in dependant.dependencies:
            found |= names(sub)
        return found

    known = names(route.dependant)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise Problem(422, "Invalid request", f"unknown query parameter {unknown[0]!r} "
                      f"(this route takes {', '.join(sorted(known)) or 'none'})",
                      "invalid-request")


class HeadAsGet:
    """``HEAD`` answered as ``GET`` without its body (RFC 9110 §9.3.2): the same status and
    headers — ``ETag``, ``Ledger-Position``, ``Content-Length`` — for a monitor or a cache
    checking a read without downloading it. FastAPI's routes take only the methods they
    declare (a ``HEAD`` was a 405)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    #: GET routes that change something (signing out clears the cookie): HEAD must not.
    NOT_SAFE = frozenset({"/ui/logout"})

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or scope["path"] in self.NOT_SAFE:
            await self.app(scope, receive, send)
            return

        async def headers_only(message: dict) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


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
        dependencies=[Depends(_only_known_query)],
        # FastAPI's /docs and /redoc load their scripts from a CDN, on the origin whose cookie
        # authorises writes: not served (the ledger makes no network call; /openapi.json is).
        docs_url=None, redoc_url=None,
    )
    api.state.ledger = ledger

    # Authentication -----------------------------------------------------------------------

    def caller(request: Request,
               authorization: Annotated[str | None, Header()] = None) -> tuple[str, str]:
        """(token name, role) of the caller, from the bearer token or the web view's cookie."""
        client = request.client.host if request.client else "?"
        now = time.monotonic()
        if len(ledger.failures) > FAILING_CLIENTS:  # forget the clients a minute has cleared
            for stale in [key for key, times in ledger.failures.items()
                          if not times or now - times[-1] > 60]:
                del ledger.failures[stale]
        failures = ledger.failures[client]
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
    AsOf = Annotated[date | None, BeforeValidator(_iso_date),
                     Query(description="business date, YYYY-MM-DD (default: today)")]
    KnownAt = Annotated[datetime | None, BeforeValidator(_iso_moment), Query(
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
            return json_answer(views.charges(ledger.app, as_of or date.today(), upto,
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
            return json_answer(
                views.subscription(ledger.app, domain, as_of or date.today(), upto), upto)
        return run(work)

    @api.get("/customers", tags=["reads"])
    def get_customers(who: Reader, known_at: KnownAt = None,
                      known_at_position: KnownAtPosition = None) -> Response:
        """`ledger customers --json`."""
        def work():
            upto = horizon(ledger, known_at, known_at_position)
            return json_answer(views.customers(ledger.app, upto), upto)
        return run(work)

    @api.get("/customers/{key}/history", tags=["reads"])
    def get_history(key: str, who: Reader, known_at: KnownAt = None,
                    known_at_position: KnownAtPosition = None) -> Response:
        """`ledger history KEY --json`."""
        def work():
            upto = horizon(ledger, known_at, known_at_position)
            return json_answer(views.history(ledger.app, key, upto), upto)
        return run(work)

    @api.get("/invoices", tags=["reads"])
    def get_invoices(who: Reader, known_at: KnownAt = None,
                     known_at_position: KnownAtPosition = None) -> Response:
        """`ledger invoices list --json`."""
        def work():
            upto = horizon(ledger, known_at, known_at_position)
            return json_answer(views.invoices(ledger.app, upto), upto)
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
                return json_answer(views.invoice(ledger.app, number), position)
            return _download(ledger.app, number, format, position)
        return run(work)

    @api.get("/invoices/{number}/explain", tags=["reads"])
    def get_explanation(number: str, who: Reader) -> Response:
        """`ledger explain NUMBER --json`: the bases de la liquidation."""
        def work():
            return json_answer(views.explain(ledger.app, number), ledger.app.position())
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
            return json_answer(views.forecast(ledger.app, start, end, upto, by=by, key=group,
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
            return json_answer(proof_json(prove_document(ledger.app, number)),
                               ledger.app.position())
        return run(work)

    add_error_handlers(api)
    add_write_routes(api, ledger, Writer)

    from web.view import add_routes

    add_routes(api, ledger, caller)
    api.add_middleware(HeadAsGet)

    @api.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/ui/")

    return api


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

