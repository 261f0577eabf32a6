"""What every route of the HTTP API shares: RFC 9457 problem details for every error, and
JSON answers that say which log position they reflect (``Ledger-Position``, ``ETag``)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from ledger.errors import LedgerError, NotFound

PROBLEM = "application/problem+json"
TYPES = "https://territorial-ledger.example/problems/"


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

def json_answer(data: Any, position: int, status: int = 200,
          headers: dict[str, str] | None = None, sort_keys: bool = False) -> Response:
    """``data`` as indented JSON, with the log position it reflects and its ETag; keys sorted
    with ``sort_keys`` (a write's answer: the same bytes when it is replayed from its record,
    which keeps them sorted)."""
    option = orjson.OPT_INDENT_2 | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    body = orjson.dumps(data, option=option) + b"\n"
    tag = f'"{position}-{hashlib.sha256(body).hexdigest()[:20]}"'
    return Response(body, status_code=status, media_type="application/json",
                    headers={"Ledger-Position": str(position), "ETag": tag, **(headers or {})})



def add_error_handlers(api: FastAPI) -> None:
    """Every error as problem details: a user's mistake as 4xx naming what was wrong, anything
    else as a 500 that says nothing was recorded."""



    @api.exception_handler(Problem)
    async def _problem(request: Request, problem: Problem) -> JSONResponse:
        return problem.response()

    @api.exception_handler(LedgerError)
    async def _ledger_error(request: Request, error: LedgerError) -> JSONResponse:
        from commands.importer import ImportRejected

        if isinstance(error, NotFound):
            return Problem(404, "Not found", str(error), "not-found").response()
        if isinstance(error, ImportRejected):
            return Problem(422, "Commands refused", str(error).splitlines()[-1],
                           "commands-refused", errors=line_errors(error)).response()
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
        # Starlette's own answers keep their headers (a 405's Allow).
        return Problem(error.status_code, str(error.detail), str(error.detail),
                       headers=dict(error.headers or {})).response()

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        return Problem(500, "Internal error", f"{type(error).__name__}: the request could not "
                       "be completed; nothing was recorded unless a write had answered",
                       "internal").response()


def line_errors(error: Exception) -> list[dict[str, Any]]:
    errors = []
    for line in str(error).splitlines():
        found = re.match(r"^.*?, line (\d+): (.*)$", line)
        if found:
            errors.append({"line": int(found.group(1)), "message": found.group(2)})
    return errors


async def limited_body(request: Request, limit: int) -> bytes:
    """The request's body, read until it is larger than ``limit`` bytes, then refused (413):
    a body sent in chunks announces no length, and read whole it could be any size."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "Body too large", f"{request.url.path} takes at most {limit} "
                          "bytes", "body-too-large")
        chunks.append(chunk)
    return b"".join(chunks)
