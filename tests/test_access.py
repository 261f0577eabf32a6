"""Who did it: actors and API tokens' names are recorded for good, so what cannot be shown or
what is ambiguous is refused before anything is recorded."""

from __future__ import annotations

import pytest

from cli.main import main
from commands.provenance import actor
from ledger.access import Access
from ledger.errors import LedgerError


@pytest.mark.parametrize(("name", "message"), [
    ("a\x1b[31mred", "without control characters"),
    ("line\nbreak", "without control characters"),
    ("x" * 65, "1 to 64 characters"),
    ("   ", "1 to 64 characters"),
])
def test_a_token_name_that_cannot_be_shown_is_refused(name, message):
    access = Access()
    with pytest.raises(LedgerError, match=message):
        access.create("0a1b2c3d", name, "clerk", "0" * 64)
    assert access.tokens == {}
    access.create("0a1b2c3d", "Portail de Mme Guével", "clerk", "0" * 64)
    assert access.tokens["0a1b2c3d"]["name"] == "Portail de Mme Guével"


def test_revoking_a_name_that_is_also_another_tokens_id_is_refused():
    """The auditor's token is named like the admin's id: which one to revoke is not guessed."""
    access = Access()
    access.create("2debddf8", "admin", "admin", "1" * 64)
    access.create("5a5a5a5a", "2debddf8", "auditor", "2" * 64)
    with pytest.raises(LedgerError, match="'2debddf8' is the id of the token named 'admin' and "
                                          "the name of token 5a5a5a5a: revoke by 5a5a5a5a or "
                                          "by 'admin'"):
        access.revoke("2debddf8")
    assert not any(token["revoked"] for token in access.tokens.values())
    assert access.revoke("5a5a5a5a") == "5a5a5a5a"
    assert access.tokens["5a5a5a5a"]["revoked"] and not access.tokens["2debddf8"]["revoked"]
    assert access.revoke("2debddf8") == "2debddf8"  # no longer ambiguous: the admin's id


def test_an_actor_with_control_characters_or_too_long_is_refused(monkeypatch):
    monkeypatch.delenv("LEDGER_ACTOR", raising=False)
    assert actor(" Mme Guével ") == "Mme Guével"
    with pytest.raises(LedgerError, match="--by: who did it is printable text"):
        actor("a\x01b\x1b[31m")
    with pytest.raises(LedgerError, match="at most 200 characters"):
        actor("x" * 201)
    monkeypatch.setenv("LEDGER_ACTOR", "tab\there")
    with pytest.raises(LedgerError, match=r"\$LEDGER_ACTOR: who did it"):
        actor()


def test_nothing_is_recorded_for_a_refused_actor(store, capsys):
    from eventstore.app import open_store
    from tests.conftest import MEGALIS_2026

    assert main(["--store", store, "tariff", "adopt", str(MEGALIS_2026),
                 "--by", "a\x1b[2Jb"]) == 1
    assert "--by: who did it is printable text" in capsys.readouterr().err
    app = open_store(store)
    try:
        assert app.position() == 0
    finally:
        app.close()


def test_serve_refuses_a_port_or_address_it_cannot_listen_on(store, capsys):
    """One line and exit 1 (or 2 for a value that is no port), never the server's traceback
    or its exit code 3, which `invoice show` gives to a difference."""
    import socket

    from tests.conftest import MEGALIS_2026

    assert main(["--store", store, "tariff", "adopt", str(MEGALIS_2026)]) == 0
    capsys.readouterr()
    for port in ("99999", "0", "http"):
        with pytest.raises(SystemExit) as exited:
            main(["--store", store, "serve", "--port", port])
        assert exited.value.code == 2
        assert f"'{port}' is not a TCP port (1 to 65535)" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--store", store, "serve", "--port", str(port)]) == 1
        assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in \
            capsys.readouterr().err
