"""The OpenAPI document fuzzed with schemathesis against a real server: whatever the request,
the answer is never a server error (500)."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.api_server import Server, ledger, token
from tests.conftest import MEGALIS_2026, ROOT

#: Examples per operation: fixed and derandomized, so that the suite is deterministic; set
#: LEDGER_FUZZ_EXAMPLES higher to search harder.
EXAMPLES = int(os.environ.get("LEDGER_FUZZ_EXAMPLES", "12"))


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    store = str(tmp_path_factory.mktemp("fuzz") / "ledger.sqlite3")
    ledger(store, "tariff", "adopt", str(MEGALIS_2026))
    for path in sorted((ROOT / "docs" / "examples").glob("*.jsonl")):
        ledger(store, "import", str(path))
    ledger(store, "bill", "--through", "2027-04-30", "--issue-date", "2027-05-03")
    secret = token(store, "clerk", "fuzz")
    server = Server(store)
    yield server.url, secret
    server.stop()


def test_no_request_gives_a_server_error(live):
    """Every operation of the OpenAPI document, with generated parameters and bodies."""
    from hypothesis import given

    url, secret = live
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": "fuzz-key"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 13
    for operation in operations:
        @given(operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        def call(case):
            case.call_and_validate(base_url=url, headers=headers, checks=[not_a_server_error])

        call()
