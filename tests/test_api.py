"""`ledger serve` over HTTP, against a real uvicorn process, on both stores: the same JSON as
the CLI, as-of and known-at on every read, idempotent writes, roles, problem details."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import httpx
import orjson
import pytest

from tests.api_server import Server, ledger, token
from tests.conftest import MEGALIS_2026, ROOT, drop_postgres_schemas, need_postgres

EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.jsonl"))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(request, tmp_path_factory):
    """A demo store (barème, example files, billing), its tokens, and a server on it."""
    env: dict[str, str] = {}
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "sqlite":
            store = str(tmp_path_factory.mktemp("api") / "ledger.sqlite3")
            ledger(store, "tariff", "adopt", str(MEGALIS_2026))
        else:
            need_postgres()
            from tests.conftest import postgres_operator

            store, operator = postgres_operator(patch)
            env = {"LEDGER_OPERATOR": operator}
            ledger(store, "tariff", "adopt", str(MEGALIS_2026), env=env)
        for path in EXAMPLES:
            ledger(store, "import", str(path), env=env)
        ledger(store, "bill", "--through", "2027-04-30", "--issue-date", "2027-05-03", "--by",
               "demo", env=env)
        tokens = {role: token(store, role, f"{role}-test", env) for role in
                  ("clerk", "auditor", "admin")}
        server = Server(store, env)
        try:
            yield {"store": store, "env": env, "url": server.url, "tokens": tokens,
                   "backend": request.param}
        finally:
            server.stop()
            if request.param == "postgres":
                drop_postgres_schemas()


def client(served, role: str = "clerk") -> httpx.Client:
    return httpx.Client(base_url=served["url"], timeout=60,
                        headers={"Authorization": f"Bearer {served['tokens'][role]}"})


def cli_json(served, *argv: str):
    return orjson.loads(ledger(served["store"], *argv, env=served["env"]))


def problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body) and body["status"] == status
    return body


def test_reads_are_the_documents_the_cli_prints(served):
    with client(served, "auditor") as http:
        pairs = [
            ("/charges?as_of=2027-06-01", ("charges", "--as-of", "2027-06-01", "--json")),
            ("/charges?as_of=2027-06-01&customer=lanvenec",
             ("charges", "--as-of", "2027-06-01", "--customer", "lanvenec", "--json")),
            ("/subscriptions/lanvenec.fr?as_of=2027-09-01",
             ("subscription", "lanvenec.fr", "--as-of", "2027-09-01", "--json")),
            ("/customers", ("customers", "--json")),
            ("/customers/lanvenec/history", ("history", "lanvenec", "--json")),
            ("/invoices", ("invoices", "list", "--json")),
            ("/invoices/F-2027-000002", ("invoice", "show", "F-2027-000002", "--json")),
            ("/invoices/F-2027-000002/explain", ("explain", "F-2027-000002", "--json")),
            ("/forecast?from=2026-01&to=2028-12&by=year&group=customer",
             ("forecast", "--from", "2026-01", "--to", "2028-12", "--by", "year",
              "--by-customer", "--json")),
        ]
        for path, argv in pairs:
            response = http.get(path)
            assert response.status_code == 200, (path, response.text)
            assert response.json() == cli_json(served, *argv), path
            assert int(response.headers["Ledger-Position"]) > 0
            assert response.headers["ETag"].startswith('"')


def test_every_read_takes_as_of_and_known_at(served):
    with client(served, "auditor") as http:
        now = http.get("/charges", params={"as_of": "2028-12-31"})
        early = http.get("/charges", params={"as_of": "2028-12-31", "known_at_position": 20})
        assert early.headers["Ledger-Position"] == "20"
        assert len(early.json()) < len(now.json())
        assert early.json() == cli_json(served, "charges", "--as-of", "2028-12-31",
                                        "--known-at-position", "20", "--json")
        problem(http.get("/charges", params={"known_at": "2027-01-01T00:00:00Z",
                                             "known_at_position": 3}), 400)
        problem(http.get("/charges", params={"known_at_position": 10 ** 9}), 400)
        problem(http.get("/charges", params={"as_of": "2027-02-30"}), 422)
        body = problem(http.get("/subscriptions/nowhere.fr"), 404)
        assert "nowhere.fr" in body["detail"]


def test_a_query_is_read_as_written_or_refused(served):
    """A date is YYYY-MM-DD and a time ISO 8601, never a number of seconds; a parameter a route
    does not take is refused, naming it, instead of answering as if it had been understood."""
    with client(served, "auditor") as http:
        for path, params, says in (
                ("/charges", {"as_of": "1798761600"}, "as_of"),
                ("/charges", {"as_of": "0"}, "as_of"),
                ("/charges", {"as_of": "2026-02-30"}, "as_of"),
                ("/customers", {"known_at": "1"}, "is not a time in ISO 8601"),
                ("/invoices/F-2027-000001", {"known_at_position": "3"},
                 "unknown query parameter 'known_at_position'"),
                ("/invoices/F-2027-000001/explain", {"as_of": "2027-01-01"},
                 "unknown query parameter 'as_of'"),
                ("/charges", {"as_of": "2027-01-01", "bogus": "1"},
                 "unknown query parameter 'bogus' (this route takes as_of, customer,")):
            body = problem(http.get(path, params=params), 422)
            assert says in str(body), (path, params, body)
        assert http.get("/charges", params={"as_of": "2027-01-01"}).status_code == 200
        assert http.get("/customers", params={"known_at": "2030-01-01T00:00:00Z"}
                        ).status_code == 200


def test_what_is_not_there_is_404_and_a_wrong_method_says_which_are_right(served):
    with client(served) as http:
        problem(http.get("/customers/nobody/history"), 404)
        problem(http.post("/corrections/F-1999-000001/apply", json={},
                          headers={"Idempotency-Key": str(uuid.uuid4())}), 404)
        wrong = http.delete("/charges")
        problem(wrong, 405)
        assert wrong.headers["Allow"] == "GET"


def test_head_answers_what_get_would_without_the_body(served):
    with client(served, "auditor") as http:
        for path in ("/charges?as_of=2027-06-01", "/invoices/F-2027-000002",
                     "/customers/nobody/history"):
            got, head = http.get(path), http.head(path)
            assert head.status_code == got.status_code, path
            assert head.content == b"" and got.content, path
            for name in ("content-type", "content-length", "etag", "ledger-position"):
                assert head.headers.get(name) == got.headers.get(name), (path, name)
        # Not a way round a route's methods: a write still refuses it; nor a way to sign out.
        assert http.head("/billing-runs").status_code == 405
        assert http.head("/ui/logout").status_code == 405


def test_bodies_sent_in_chunks_are_bounded_and_pages_are_not_framed_or_cached(served):
    def chunks(size):  # no Content-Length: the body arrives in chunks
        for _ in range(size // 8192):
            yield b"a" * 8192

    with client(served) as http:
        # Anyone may post the sign-in form: 300 MB sent there grew the server by 1.5 GB.
        big = http.post("/ui/login", content=chunks(1 << 20),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
        problem(big, 413)
        problem(http.post("/billing-runs", content=chunks(1 << 20),
                          headers={"Content-Type": "application/json",
                                   "Idempotency-Key": str(uuid.uuid4())}), 413)
        wrong = http.post("/ui/login", data={"token": "nope"}, follow_redirects=False)
        assert wrong.status_code == 303 and wrong.headers["location"].endswith("error=1")
        page = http.get("/ui/")
        assert page.status_code == 200
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert http.get("/docs").status_code == 404  # its scripts came from a CDN
        assert http.get("/openapi.json").status_code == 200


def test_a_body_of_another_type_or_too_large_is_refused_before_it_is_read(served):
    """A form posted by mistake (curl -d without a Content-Type) is not read as JSON; a body
    larger than a write takes is refused, the file of commands pointed to `ledger import`."""
    run = b'{"through": "2027-12-31", "issue_date": "2028-01-05", "dry_run": true}'
    with client(served) as http:
        before = int(http.get("/invoices").headers["Ledger-Position"])
        for path, kind in (("/billing-runs", "application/x-www-form-urlencoded"),
                           ("/billing-runs", "text/plain"), ("/commands", "application/xml")):
            refused = problem(http.post(path, content=run, headers={
                "Idempotency-Key": str(uuid.uuid4()), "Content-Type": kind}), 415)
            assert f"a body sent as '{kind}' is not read here" in refused["detail"]
        large = problem(http.post("/billing-runs", content=run + b" " * (64 << 10), headers={
            "Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"}), 413)
        assert "/billing-runs takes at most 65536 bytes" in large["detail"]
        accepted = http.post("/billing-runs", content=run, headers={
            "Idempotency-Key": str(uuid.uuid4()),
            "Content-Type": "application/json; charset=utf-8"})
        assert accepted.status_code == 200, accepted.text
        assert int(http.get("/invoices").headers["Ledger-Position"]) == before


def test_no_token_a_bad_token_and_an_auditor_writing(served):
    anonymous = httpx.get(f"{served['url']}/charges")
    assert problem(anonymous, 401)["type"].endswith("unauthenticated")
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    with client(served, "auditor") as http:
        response = http.post("/commands", headers={"Idempotency-Key": str(uuid.uuid4())},
                             json={"id": "x", "type": "activate", "domain": "a.fr",
                                   "activated_on": "2027-01-01"})
        assert problem(response, 403)["detail"].startswith("an auditor's token")


def test_failed_authentications_are_rate_limited(served, tmp_path):
    # A server of its own: the limit is per client and lasts a minute.
    server = Server(served["store"], served["env"])
    try:
        for _ in range(10):
            problem(httpx.get(f"{server.url}/customers",
                              headers={"Authorization": "Bearer wrong"}), 401)
        limited = httpx.get(f"{server.url}/customers",
                            headers={"Authorization": f"Bearer {served['tokens']['clerk']}"})
        assert problem(limited, 429)["type"].endswith("rate-limited")
        assert limited.headers["Retry-After"] == "60"
    finally:
        server.stop()


def command(domain: str, **fields) -> dict:
    return {"id": f"api-{uuid.uuid4().hex[:10]}", "type": "register_customer",
            "customer": domain.split(".")[0], "name": f"Commune de {domain}",
            "siret": fields.pop("siret"), "category": "commune", "population": 900,
            "address": {"line1": "Place", "postcode": "29000", "city": "Ville"}, **fields}


def test_commands_are_all_or_nothing_and_idempotent(served):
    from tests.conftest import siret

    good = command("plouha.fr", siret=siret(1111 + hash(served["backend"]) % 1000))
    bad = {"id": "api-bad", "type": "activate", "domain": "nowhere.fr",
           "activated_on": "2027-01-01"}
    body = "\n".join(json.dumps(line) for line in (good, bad))
    with client(served) as http:
        before = int(http.get("/customers").headers["Ledger-Position"])
        refused = http.post("/commands", content=body,
                            headers={"Idempotency-Key": str(uuid.uuid4()),
                                     "Content-Type": "application/x-ndjson"})
        errors = problem(refused, 422)["errors"]
        assert errors == [{"line": 2, "message": "no order form for domain 'nowhere.fr'"}]
        assert int(http.get("/customers").headers["Ledger-Position"]) == before
        problem(http.post("/commands", json=good), 400)  # no Idempotency-Key
        key = str(uuid.uuid4())
        first = http.post("/commands", json=good,
                          headers={"Idempotency-Key": key, "Ledger-Actor": "Mme Riou",
                                   "Ledger-Reason": "adhesion", "Ledger-Comment": "portail"})
        assert first.status_code == 201 and first.json()["applied"] == 1
        after = int(http.get("/customers").headers["Ledger-Position"])
        again = http.post("/commands", json=good, headers={"Idempotency-Key": key})
        assert (again.status_code, again.json()) == (201, first.json())
        assert again.content == first.content  # the same bytes, replayed from the record
        assert again.headers["Idempotent-Replayed"] == "true"
        assert int(http.get("/customers").headers["Ledger-Position"]) == after
        other = http.post("/commands", json={**good, "population": 901},
                          headers={"Idempotency-Key": key})
        assert problem(other, 422)["type"].endswith("idempotency-key-reused")
        history = http.get(f"/customers/{good['customer']}/history").json()
        registered = next(m for m in history if m["event"] == "customer.registered")
        assert registered["actor"] == "Mme Riou"


def test_who_did_it_is_recorded_as_sent_or_refused(served):
    """Header values are ASCII: UTF-8 sent raw would be recorded as its latin-1 reading, for
    good; percent-encoded, it is recorded decoded. Control characters (written to the terminal
    of whoever reads the history) and oversize values are refused, naming the header."""
    from tests.conftest import siret

    good = command("ploumilliau.fr", siret=siret(2222 + hash(served["backend"]) % 1000))
    with client(served) as http:
        before = int(http.get("/customers").headers["Ledger-Position"])
        for header, value, message in (
                ("Ledger-Actor", "Mme Riou é".encode(), "printable ASCII only"),
                ("Ledger-Actor", "a%01b%1B[31m", "control characters are not allowed"),
                ("Ledger-Actor", "a" * 201, "at most 200 characters (got 201)"),
                ("Ledger-Reason", "%C3", "its percent-encoded bytes are not UTF-8"),
                ("Ledger-Comment", "x" * 2001, "at most 2000 characters (got 2001)")):
            refused = problem(http.post("/commands", json=good, headers={
                "Idempotency-Key": str(uuid.uuid4()), header: value}), 400)
            assert refused["detail"].startswith(f"{header} header: {message}"), refused
        assert int(http.get("/customers").headers["Ledger-Position"]) == before
        done = http.post("/commands", json=good, headers={
            "Idempotency-Key": str(uuid.uuid4()), "Ledger-Actor": "Mme%20Gu%C3%A9vel"})
        assert done.status_code == 201, done.text
        history = http.get(f"/customers/{good['customer']}/history").json()
        assert history[0]["actor"] == "Mme Guével"


def in_process(tmp_path):
    """An API app on a new store with the barème, served in this process, and a clerk's token."""
    from ledger.access import Access
    from web.api import create_app, new_token, token_hash

    store = str(tmp_path / "ledger.sqlite3")
    ledger(store, "tariff", "adopt", str(MEGALIS_2026))
    secret = new_token()
    app = create_app(store)
    access = Access()
    access.create("t1", "clerk", "clerk", token_hash(secret))
    app.state.ledger.app.save(access)
    return app, secret


def test_a_key_in_flight_is_refused(tmp_path, monkeypatch):
    """While the first request with a key is being processed, a second one gets 409. Tested
    in process, with the first request held until the second has been answered."""
    import asyncio

    import web.writes as api_module

    app, secret = in_process(tmp_path)
    held, original = threading.Event(), api_module._answer

    def holding(*args, **kwargs):
        held.wait(timeout=30)
        return original(*args, **kwargs)

    monkeypatch.setattr(api_module, "_answer", holding)

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": "same"}
        body = {"id": "flight-1", "type": "activate", "domain": "nowhere.fr",
                "activated_on": "2027-01-01"}
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            first = asyncio.create_task(http.post("/commands", json=body, headers=headers))
            while "same" not in app.state.ledger.in_flight:  # until the first is inside
                await asyncio.sleep(0.01)
            second = await http.post("/commands", json=body, headers=headers)
            held.set()
            return await first, second

    first, second = asyncio.run(scenario())
    assert problem(second, 409)["type"].endswith("idempotency-in-flight")
    assert first.status_code == 422  # processed once released (no such domain)


def test_a_write_and_its_idempotency_record_are_one_transaction(tmp_path, monkeypatch):
    """If the answer cannot be recorded, the write is not stored either: a retry with the same
    key applies the commands then (not "already applied" with nothing recorded for the key)."""
    import asyncio

    import web.writes as api_module
    from tests.conftest import siret

    app, secret = in_process(tmp_path)
    position = app.state.ledger.app.position()
    real_request = api_module.ApiRequest

    def unrecordable(**fields):
        raise OSError("no space left on device")

    body = command("plouha.fr", siret=siret(4242))

    async def send():
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.post("/commands", json=body,
                                   headers={"Authorization": f"Bearer {secret}",
                                            "Idempotency-Key": "k1"})

    monkeypatch.setattr(api_module, "ApiRequest", unrecordable)
    assert asyncio.run(send()).status_code == 500
    assert app.state.ledger.app.position() == position  # the commands were rolled back
    monkeypatch.setattr(api_module, "ApiRequest", real_request)
    retried = asyncio.run(send())
    assert retried.status_code == 201 and retried.json()["applied"] == 1
    replayed = asyncio.run(send())
    assert replayed.json() == retried.json() and replayed.headers["Idempotent-Replayed"] == "true"


def test_billing_runs_and_corrections(served):
    with client(served) as http:
        before = int(http.get("/invoices").headers["Ledger-Position"])
        preview = http.post("/billing-runs", json={"through": "2027-12-31",
                                                   "issue_date": "2028-01-05",
                                                   "dry_run": True},
                            headers={"Idempotency-Key": str(uuid.uuid4())})
        assert preview.status_code == 200 and preview.json()["dry_run"] is True
        assert int(http.get("/invoices").headers["Ledger-Position"]) == before
        problem(http.post("/billing-runs", json={"issue_date": "2028-01-05"},
                          headers={"Idempotency-Key": str(uuid.uuid4())}), 422)
        problem(http.post("/billing-runs", json={"through": "2027-12-31", "extra": 1},
                          headers={"Idempotency-Key": str(uuid.uuid4())}), 422)
        # A flag is a JSON boolean: "false" is a text, not Python's truth of one.
        for flags in ({"dry_run": "false"}, {"dry_run": 1}, {"dry_run": True, "in_advance": "no"}):
            refused = problem(http.post("/billing-runs", json={
                "through": "2027-12-31", "issue_date": "2028-01-05", **flags},
                headers={"Idempotency-Key": str(uuid.uuid4())}), 422)
            assert "expected true or false" in refused["detail"], refused
        assert int(http.get("/invoices").headers["Ledger-Position"]) == before
        problem(http.post("/corrections/F-1999-000001/apply", json={},
                          headers={"Idempotency-Key": str(uuid.uuid4())}), 404)


def test_downloads_checkpoint_and_proof(served):
    with client(served, "auditor") as http:
        pdf = http.get("/invoices/F-2027-000001", params={"format": "facturx"})
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-1.7")
        problem(http.get("/invoices/F-2027-000001", params={"format": "pes"}), 404)
        problem(http.get("/invoices/F-1999-000001"), 404)
        problem(http.get("/audit/checkpoint"), 404)
    key = Path(served["store"]).parent / f"{uuid.uuid4().hex}.key" \
        if served["backend"] == "sqlite" else Path("/tmp") / f"{uuid.uuid4().hex}.key"
    ledger(served["store"], "audit", "keygen", "--out", str(key), env=served["env"])
    ledger(served["store"], "audit", "checkpoint", "--key", str(key), env=served["env"])
    key.unlink()
    with client(served, "auditor") as http:
        note = http.get("/audit/checkpoint")
        assert note.status_code == 200 and "\n\u2014 " in note.text
        proof = http.get("/audit/proof/F-2027-000001").json()
        assert proof["checkpoint"] == note.text and proof["hashes"]


def test_openapi_is_3_1_and_lists_every_route(served):
    document = httpx.get(f"{served['url']}/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert {"/charges", "/subscriptions/{domain}", "/customers", "/customers/{key}/history",
            "/invoices", "/invoices/{number}", "/invoices/{number}/explain", "/forecast",
            "/audit/checkpoint", "/audit/proof/{number}", "/commands", "/billing-runs",
            "/corrections/{proposal}/apply"} <= set(document["paths"])


def test_tokens_never_reach_another_operators_data(served, tmp_path):
    """Another store (another operator) does not know this store's tokens."""
    other = str(tmp_path / "other.sqlite3")
    ledger(other, "tariff", "adopt", str(MEGALIS_2026))
    server = Server(other)
    try:
        response = httpx.get(f"{server.url}/customers",
                             headers={"Authorization": f"Bearer {served['tokens']['admin']}"})
        problem(response, 401)
    finally:
        server.stop()
