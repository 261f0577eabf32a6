"""The auditors' web view: server-rendered pages (Jinja2), French labels, no JavaScript.

A customer list; a customer's timeline, as known at any recorded time; each document with its
lines, its explanation, whether it derives again identically and is included in the latest
signed checkpoint, and its downloads; the latest checkpoint and how to verify it. Sign-in with a
token (any role) kept in an HttpOnly cookie.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ledger.dates import french_date
from ledger.money import french_amount
from projections.timeline import source_fr

TEMPLATES = Path(__file__).parent / "templates"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
_env.filters["date_fr"] = lambda value: french_date(value) if value else ""
_env.filters["euros"] = lambda value: french_amount(value) if value not in (None, "") else ""
_env.filters["moment"] = lambda value: value[:19].replace("T", " à ") if value else ""

_env.filters["source_fr"] = source_fr


def page(name: str, **context: Any) -> HTMLResponse:
    """A page; an error page (``status`` in its context) answers with that HTTP status."""
    return HTMLResponse(_env.get_template(name).render(**context),
                        status_code=context.get("status", 200), headers=PAGE_HEADERS)


#: Every page of the web view: never framed by another site, never kept by a cache (they show
#: a member's invoices and amounts).
PAGE_HEADERS = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'",
                "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


#: The largest sign-in form read (bytes).
LOGIN_BODY = 4096


def add_routes(api: FastAPI, ledger: Any, caller: Callable) -> None:
    from web.responses import Problem

    def viewer(request: Request) -> tuple[str, str] | RedirectResponse:
        try:
            return caller(request, request.headers.get("authorization"))
        except Problem as problem:
            if problem.status == 401:
                return RedirectResponse("/ui/login", status_code=303)
            raise

    @api.get("/ui/login", include_in_schema=False)
    def login_form(request: Request) -> HTMLResponse:
        return page("login.html", error=request.query_params.get("error"))

    @api.post("/ui/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        from web.responses import limited_body

        # Anyone may post here: a token is a few dozen bytes, a form never needs more.
        form = await limited_body(request, LOGIN_BODY)
        token = parse_qs(form.decode("utf-8", "replace")).get("token", [""])[0]
        try:
            caller(request, f"Bearer {token}")
        except Problem as problem:
            if problem.status == 429:
                raise
            return RedirectResponse("/ui/login?error=1", status_code=303)
        response = RedirectResponse("/ui/", status_code=303)
        response.set_cookie("ledger_token", token, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    @api.get("/ui/logout", include_in_schema=False)
    def logout() -> Response:
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie("ledger_token")
        return response

    @api.get("/ui/", include_in_schema=False)
    def customers(request: Request) -> Response:
        from commands import views

        who = viewer(request)
        if isinstance(who, Response):
            return who
        with ledger.lock:
            rows = views.customers(ledger.app, ledger.app.position())
            invoices = views.invoices(ledger.app)
        return page("customers.html", who=who, customers=rows, invoices=invoices)

    @api.get("/ui/customers/{key}", include_in_schema=False)
    def timeline(key: str, request: Request) -> Response:
        from commands import views
        from projections.history import resolve

        who = viewer(request)
        if isinstance(who, Response):
            return who
        text = request.query_params.get("known_at") or ""
        moment = None
        if text:
            try:
                moment = datetime.fromisoformat(text)
                if moment.tzinfo is None:  # the picker's times are UTC, as the page says
                    moment = moment.replace(tzinfo=UTC)
            except ValueError:
                return page("error.html", who=who, status=400,
                            message=f"« {text} » n'est pas une date et heure (AAAA-MM-JJTHH:MM)")
        from ledger.errors import LedgerError
        from ledger.identity import customer_id
        from projections.history import aggregate_known_at

        with ledger.lock:
            if aggregate_known_at(ledger.app, customer_id(key), ledger.app.position()) is None:
                return page("error.html", who=who, status=404,
                            message=f"Aucun membre « {key} » dans ce grand livre.")
            upto = resolve(ledger.app, moment)
            try:
                events = views.history(ledger.app, key, upto)
            except LedgerError:
                events = []  # nothing was known of it yet at that time
            documents = [d for d in views.invoices(ledger.app, upto) if d["customer"] == key]
        return page("timeline.html", who=who, key=key, events=events, documents=documents,
                    known_at=text, position=upto)

    @api.get("/ui/documents/{number}", include_in_schema=False)
    def document(number: str, request: Request) -> Response:
        from commands import views
        from commands.audit import AuditError, prove_document
        from exports.explain import to_text

        who = viewer(request)
        if isinstance(who, Response):
            return who
        from ledger.errors import LedgerError

        with ledger.lock:
            try:
                shown = views.invoice(ledger.app, number)
            except LedgerError:
                return page("error.html", who=who, status=404,
                            message=f"Aucun document « {number} » dans ce grand livre.")
            explanation = to_text(views.explain(ledger.app, number)).split("\n")
            try:
                proof = prove_document(ledger.app, number)
                included = f"oui — écriture n° {proof.index + 1}, dans l'arbre signé de " \
                           f"{proof.checkpoint.split(chr(10))[1]} écritures"
            except AuditError:
                included = ("pas encore : aucun point de contrôle signé ne couvre encore son "
                            "écriture (l'ordonnateur en signe un avec « ledger audit "
                            "checkpoint »)")
        return page("document.html", who=who, shown=shown, doc=shown["document"],
                    explanation=explanation, included=included)

    @api.get("/ui/checkpoint", include_in_schema=False)
    def checkpoint(request: Request) -> Response:
        from commands.audit import AuditError, latest_checkpoint, registered_verifiers

        who = viewer(request)
        if isinstance(who, Response):
            return who
        with ledger.lock:
            try:
                note = latest_checkpoint(ledger.app)
            except AuditError:
                note = None
            keys = [v.text for v in registered_verifiers(ledger.app)]
        return page("checkpoint.html", who=who, note=note, keys=keys)
