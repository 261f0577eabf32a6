"""End to end through the ``ledger`` command line, on a temporary SQLite store."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from cli.main import main
from tests.conftest import MEGALIS_2026, activate, add_storage, jsonl, register, sign, terminate

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def store(store, capsys):
    """The test store with the Suite Territoriale 2026 schedule adopted through the CLI."""
    assert main(["--store", store, "tariff", "adopt", str(MEGALIS_2026)]) == 0
    assert "Adopted megalis-suite-territoriale-2026" in capsys.readouterr().out
    return store


@pytest.fixture
def example_file(tmp_path):
    path = tmp_path / "commands.jsonl"
    path.write_text("\n".join(jsonl(register(), sign(), activate(), add_storage(), terminate())) + "\n")
    return path


def test_import_then_charges_as_json(capsys, store, example_file):
    code, out, _ = run(capsys, "--store", store, "import", str(example_file))
    assert code == 0 and "5 command(s) applied" in out
    code, out, _ = run(capsys, "charges", "--store", store, "--as-of", "2027-04-01", "--json")
    assert code == 0
    charges = orjson.loads(out)
    assert [c["amount"] for c in charges] == ["60.00", "600.00", "60.00", "60.00"]
    assert set(charges[0]) >= {"customer", "domain", "kind", "charge_date", "period_start",
                               "period_end", "amount", "rule"}
    assert charges[1] == {
        "customer": "lanvenec", "domain": "lanvenec.fr", "order": "BC-26-001",
        "kind": "access_fee", "charge_date": "2026-04-02", "period_start": "2026-04-02",
        "period_end": "2028-12-31", "amount": "600.00", "rule": "R3",
        "basis": "access fee, 25 GB tier", "schedule": "megalis-suite-territoriale-2026",
        "line": "st-access-25gb",
    }


def test_charges_table_has_totals(capsys, store, example_file):
    run(capsys, "--store", store, "import", str(example_file))
    code, out, _ = run(capsys, "--store", store, "charges", "--as-of", "2028-12-31")
    assert code == 0
    assert "total lanvenec" in out and "780.00" in out and "TOTAL" in out


def test_charges_filters(capsys, store, example_file):
    run(capsys, "--store", store, "import", str(example_file))
    _, out, _ = run(capsys, "--store", store, "charges", "--as-of", "2028-12-31", "--json",
                    "--domain", "LANVENEC.FR")
    assert len(orjson.loads(out)) == 4
    _, out, _ = run(capsys, "--store", store, "charges", "--as-of", "2028-12-31", "--json",
                    "--customer", "lanvenec")
    assert len(orjson.loads(out)) == 4


@pytest.mark.parametrize("option, value, message", [
    ("--customer", "someone-else", "unknown customer 'someone-else'"),
    ("--domain", "nowhere.fr", "no order form for domain 'nowhere.fr'"),
])
def test_an_unknown_customer_or_domain_is_an_error_not_an_empty_list(
        capsys, store, example_file, option, value, message):
    run(capsys, "--store", store, "import", str(example_file))
    code, out, err = run(capsys, "--store", store, "charges", "--json", option, value)
    assert (code, out) == (1, "")
    assert message in err


def test_subscription_as_json(capsys, store, example_file):
    run(capsys, "--store", store, "import", str(example_file))
    code, out, _ = run(capsys, "--store", store, "subscription", "lanvenec.fr",
                       "--as-of", "2027-05-01", "--json")
    assert code == 0
    state = orjson.loads(out)
    assert {k: state[k] for k in ("domain", "customer", "state", "activated_on", "term_number",
                                  "term_end", "next_renewal", "termination_received_on",
                                  "service_end", "storage_gb", "extra_gb")} == {
        "domain": "lanvenec.fr", "customer": "lanvenec", "state": "active",
        "activated_on": "2026-04-02", "term_number": 2, "term_end": "2028-04-01",
        "next_renewal": "2028-04-02", "termination_received_on": None, "service_end": None,
        "storage_gb": 25, "extra_gb": 20,
    }


def test_subscription_table(capsys, store, example_file):
    run(capsys, "--store", store, "import", str(example_file))
    code, out, _ = run(capsys, "--store", store, "subscription", "lanvenec.fr", "--as-of", "2027-09-01")
    assert code == 0 and "terminated" in out and "2027-08-31" in out


def test_unknown_domain_is_an_error(capsys, store, example_file):
    run(capsys, "--store", store, "import", str(example_file))
    code, _, err = run(capsys, "--store", store, "subscription", "lanvenec.fr", "--as-of", "2026-01-01")
    assert code == 1
    assert err == "error: no order form for domain 'lanvenec.fr' as of 2026-01-01\n"


def test_store_from_the_environment(capsys, monkeypatch, store, example_file):
    monkeypatch.setenv("LEDGER_STORE", store)
    run(capsys, "import", str(example_file))
    assert store.startswith("postgresql://") or Path(store).exists()
    _, out, _ = run(capsys, "charges", "--as-of", "2026-04-01", "--json")
    assert len(orjson.loads(out)) == 1


def test_known_at_option(capsys, store, example_file):
    run(capsys, "--store", store, "import", str(example_file))
    _, out, _ = run(capsys, "--store", store, "charges", "--as-of", "2028-12-31", "--json",
                    "--known-at", "2000-01-01T00:00:00")
    assert orjson.loads(out) == []


def test_bad_file_exits_non_zero_naming_the_line(capsys, store, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(jsonl(register(), sign(storage_gb=30))) + "\n")
    code, _, err = run(capsys, "--store", store, "import", str(path))
    assert code == 1
    assert f"{path}, line 2: unknown storage tier 30 GB" in err
    assert "Nothing from" in err
    _, out, _ = run(capsys, "--store", store, "charges", "--as-of", "2028-12-31", "--json")
    assert orjson.loads(out) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["charges", "--as-of", "2026-02-30"], "2026-02-30 is not a real calendar date"),
        (["charges", "--known-at", "yesterday"], "expected an ISO date-time"),
        (["invoices", "export", "--out", "-"], "'-' is not the standard output here"),
        # Year 0000 does not exist: refused with the other malformed periods (it was exit 1).
        (["audit", "close", "--period", "0000-01"], "expected a month such as 2027-01"),
        (["audit", "close", "--year", "0000"], "expected a year such as 2027"),
        (["audit", "close", "--period", "２０２６-03"], "expected a month such as 2027-01"),
    ],
)
def test_bad_options_are_reported_by_argparse(capsys, store, argv, message):
    with pytest.raises(SystemExit) as caught:
        main(["--store", store, *argv])
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


def test_a_file_that_is_not_a_store(capsys, tmp_path):
    path = tmp_path / "notes.sqlite3"
    path.write_text("not a database")
    code, _, err = run(capsys, "--store", str(path), "charges")
    assert code == 1 and "cannot open store" in err and "not a database" in err


def test_store_in_a_missing_folder(capsys, tmp_path):
    code, _, err = run(capsys, "--store", str(tmp_path / "nope" / "x.sqlite3"), "charges")
    assert code == 1 and "does not exist" in err
    (tmp_path / "a.jsonl").write_text("")
    code, _, err = run(capsys, "--store", str(tmp_path / "a.jsonl" / "x.sqlite3"), "charges")
    assert code == 1 and "a.jsonl' is a file, not a folder" in err


def test_console_script_runs_the_examples_without_traceback(tmp_path):
    """The installed entry point, as a user runs it, on the shipped examples."""
    env = {**os.environ, "LEDGER_STORE": str(tmp_path / "demo.sqlite3")}
    subprocess.run([sys.executable, "-m", "cli.main", "tariff", "adopt", str(MEGALIS_2026)],
                   env=env, check=True, capture_output=True)
    for example in sorted(EXAMPLES.glob("*.jsonl")):
        done = subprocess.run([sys.executable, "-m", "cli.main", "import", str(example)],
                              env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "import", str(EXAMPLES / "01-lanvenec.jsonl")],
        env=env, capture_output=True, text=True, check=False)
    assert "0 command(s) applied, 8 already applied" in done.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "z", "type": "activate"\n')
    done = subprocess.run([sys.executable, "-m", "cli.main", "import", str(bad)],
                          env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "line 1: not valid JSON" in done.stderr


def test_a_refused_import_into_a_new_store_leaves_no_file(tmp_path, capsys):
    fresh = tmp_path / "new.sqlite3"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "z", "type": "activate"\n')
    assert main(["--store", str(fresh), "import", str(bad)]) == 1
    assert "line 1: not valid JSON" in capsys.readouterr().err
    refused = tmp_path / "refused.jsonl"  # valid JSON, refused by the rules (no barème yet)
    refused.write_text("\n".join(jsonl(register(), sign())) + "\n")
    assert main(["--store", str(fresh), "import", str(refused)]) == 1
    assert "no tariff schedule" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "refused.jsonl"]
    # A file that is stored creates the store, and a later refusal leaves it as it was.
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(jsonl(register())) + "\n")
    assert main(["--store", str(fresh), "import", str(good)]) == 0
    assert main(["--store", str(fresh), "import", str(bad)]) == 1
    assert fresh.exists()
    capsys.readouterr()
    assert main(["--store", str(fresh), "customers", "--json"]) == 0
    assert [c["customer"] for c in orjson.loads(capsys.readouterr().out)] == ["lanvenec"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal(monkeypatch):
    from cli.output import progress

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with progress("importing x", 3) as advance:
        advance()
    assert sys.stderr.getvalue() == ""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress("importing x", 3, quiet=True) as advance:
        advance()
    assert terminal.getvalue() == ""
    with progress("importing x", 3) as advance:
        for _ in range(3):
            advance()
    assert "importing x" in terminal.getvalue()


def test_the_command_line_choices_are_the_domains():
    """Written out in the CLI modules so that building the parser stays light."""
    from cli import forecast as forecast_cli
    from cli import serve as serve_cli
    from ledger.access import ROLES
    from projections.forecast import ASSUMPTIONS

    assert forecast_cli.ASSUMPTIONS == ASSUMPTIONS
    assert serve_cli.ROLES == ROLES


# Files given on the command line that cannot be read or written: a message naming the file,
# never a traceback (found by a hostile trial of every command's options).

def test_files_that_cannot_be_read_or_written_are_named(capsys, store, example_file, tmp_path):
    operator = Path(__file__).resolve().parent.parent / "docs" / "examples" / "00-operator.jsonl"
    assert run(capsys, "--store", store, "import", str(operator))[0] == 0
    assert run(capsys, "--store", store, "import", str(example_file))[0] == 0
    assert run(capsys, "--store", store, "bill", "--through", "2027-03-31", "--issue-date",
               "2027-04-02")[0] == 0
    binary = tmp_path / "random.bin"
    binary.write_bytes(bytes(range(128, 256)) * 3)
    missing = tmp_path / "missing" / "out"
    period = ("--from", "2026-01", "--to", "2027-01")
    for argv, message in [
        (("forecast", *period, "--with", str(tmp_path / "none.jsonl")),
         f"error: {tmp_path / 'none.jsonl'}: No such file or directory"),
        (("forecast", *period, "--with", str(binary)), f"error: {binary} is not UTF-8 text"),
        (("forecast", *period, "--csv", f"{missing}.csv"),
         f"error: {missing}.csv: No such file or directory"),
        (("forecast", *period, "--plot", "revenue.gif"),
         "error: --plot revenue.gif: the drawing is written as .png or .svg"),
        (("accruals", "--at", "2026-12-31", "--csv", str(tmp_path)),
         f"error: {tmp_path}: Is a directory"),
        (("explain", "F-2027-000001", "--format", "html", "--out", f"{missing}.html"),
         f"error: {missing}.html: No such file or directory"),
        (("audit", "verify", "--checkpoint", str(binary)),
         f"error: checkpoint file {binary} is not text"),
        (("audit", "verify", "--key", str(binary)),
         f"error: public key: {binary} is not a key file"),
    ]:
        code, _, err = run(capsys, "--store", store, *argv)
        assert (code, err.splitlines()[0][:len(message)]) == (1, message), argv
        assert "Traceback" not in err
    code, _, err = run(capsys, "audit", "check-proof", str(binary), "--key", str(binary))
    assert code == 4 and err.startswith(f"PROOF REJECTED: {binary} is not text")


def test_db_init_on_a_server_that_cannot_be_reached_says_so(capsys):
    code, _, err = run(capsys, "--store", "postgresql://nobody@127.0.0.1:1/none", "db", "init")
    assert code == 1 and err.startswith("error: cannot set up postgres ")
    assert "Connection refused" in err and "Traceback" not in err


def test_what_a_hostile_trial_found_unsaid(capsys, store, example_file, tmp_path):
    """An empty --store is not the default store; forecast, like charges, refuses a customer
    it does not know; verify does not say no checkpoint was given when one was, unreadable;
    an update_customer that changes nothing is a bad line."""
    code, _, err = run(capsys, "--store", "", "charges")
    assert code == 1 and err.startswith("error: --store is empty")
    assert run(capsys, "--store", store, "import", str(example_file))[0] == 0
    code, _, err = run(capsys, "--store", store, "forecast", "--from", "2026-01", "--to",
                       "2027-01", "--customer", "nobody")
    assert code == 1 and err.startswith("error: unknown customer 'nobody'")
    code, out, _ = run(capsys, "--store", store, "forecast", "--from", "2026-01", "--to",
                       "2027-01", "--customer", "lanvenec", "--json")
    assert code == 0 and orjson.loads(out)
    garbage = tmp_path / "checkpoint.txt"
    garbage.write_text("not a checkpoint\n")
    code, _, err = run(capsys, "--store", store, "audit", "verify", "--checkpoint", str(garbage))
    assert code == 1 and f"checkpoint file {garbage} is not a checkpoint" in err
    update = tmp_path / "update.jsonl"
    update.write_text('{"id": "u1", "type": "update_customer", "customer": "lanvenec"}\n')
    code, _, err = run(capsys, "--store", store, "import", str(update))
    assert code == 1 and "update_customer changes nothing: give at least one of name" in err


@pytest.mark.parametrize("argv", [
    ["accruals", "--at", "2026-12-31", "--csv", ""],
    ["forecast", "--from", "2027-01", "--to", "2027-12", "--csv", " "],
    ["forecast", "--from", "2027-01", "--to", "2027-12", "--plot", ""],
    ["invoices", "export", "--csv", ""],
    ["invoice", "export", "F-2027-000001", "--out", ""],
    ["explain", "F-2027-000001", "--out", ""],
    ["audit", "prove", "F-2027-000001", "--out", ""],
    ["dossier", "lanvenec", "--key", "k", "--out", ""],
])
def test_an_empty_output_path_is_a_mistake_not_print_instead(argv, tmp_path, capsys):
    """`--csv ''` printed the table as if no file had been asked for."""
    with pytest.raises(SystemExit) as exited:
        main(["--store", str(tmp_path / "ledger.sqlite3"), *argv])
    assert exited.value.code == 2
    assert "give the path of the file to write" in capsys.readouterr().err
    assert not (tmp_path / "ledger.sqlite3").exists()
