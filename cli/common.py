"""What every ``ledger`` command shares: the store options, argument types, the horizon.

The command line is argparse, on purpose: it is in the standard library, and
:mod:`cli.main` builds only the chosen command's parser, so ``ledger --help`` starts in about
twice the time of ``python -c pass`` (docs/performance.md). click or typer would add their
own import time to every command for features (prompts, rich help) the ledger does not use.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from ledger.dates import parse_iso_date
from ledger.errors import LedgerError

if TYPE_CHECKING:
    from eventstore.app import LedgerApplication


# Argument types: a bad value is argparse's usage error naming the option, never a traceback.

def output_file(text: str) -> str:
    """A file to write: an empty path (``--csv ''``) is a mistake, not "print instead"."""
    if not text.strip():
        raise argparse.ArgumentTypeError("give the path of the file to write")
    if text == "-":  # read elsewhere as the standard output: here it would be a file named "-"
        raise argparse.ArgumentTypeError("give the path of the file to write ('-' is not the "
                                         "standard output here; write ./- for a file of that "
                                         "name)")
    return text


def iso_day(text: str) -> date:
    """A business date YYYY-MM-DD."""
    try:
        return parse_iso_date(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def iso_month(text: str) -> str:
    """A month YYYY-MM."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        raise argparse.ArgumentTypeError(f"expected a month YYYY-MM, got {text!r}")
    return text


def recorded_time(text: str) -> datetime:
    """A recorded time: an ISO date-time, read as UTC without an offset (the zone of the
    log's timestamps)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO date-time such as 2026-05-01T12:00:00+02:00, got {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def log_position(text: str) -> int:
    """A log position: 0, 1, 2 …"""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a log position (0, 1, 2 …), got {text!r}")
    return value


def add_known_at(parser: argparse.ArgumentParser) -> None:
    """``--known-at TIME`` / ``--known-at-position N``: read the log only up to that point."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--known-at", type=recorded_time,
                       help="only entries recorded at or before this ISO date-time (UTC if no "
                            "offset)")
    group.add_argument("--known-at-position", type=log_position, metavar="N",
                       help="only the entries at log positions 1 … N")


def horizon(args: argparse.Namespace) -> int | datetime | None:
    """The ``--known-at``/``--known-at-position`` given, if any."""
    position = getattr(args, "known_at_position", None)
    return position if position is not None else getattr(args, "known_at", None)


def known_title(app, args: argparse.Namespace, upto: int) -> str:
    """How a table names what it was derived from."""
    if getattr(args, "known_at", None) is not None:
        return f", as known at {args.known_at.isoformat()} (log position {upto})"
    if getattr(args, "known_at_position", None) is not None:
        return f", as known at log position {upto}"
    return ""


# The store.

def store_options(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """``--store`` and ``--operator`` as given (``None``: from the environment)."""
    return getattr(args, "store", None), getattr(args, "operator", None)


def open_ledger(args: argparse.Namespace, *, create: bool = False) -> LedgerApplication:
    """The store the options name; a read or a write on a store that does not exist is an
    error unless ``create`` (``ledger import`` and ``ledger tariff adopt`` create a SQLite
    file on first use)."""
    from eventstore.app import open_store

    app = open_store(*store_options(args), create=create)
    given = getattr(args, "known_at_position", None)
    positions = given if isinstance(given, list) else [] if given is None else [given]
    if positions and max(positions) > (end := app.position()):
        app.close()
        raise LedgerError(f"--known-at-position {max(positions)} is past the end of the log, "
                          f"which has {end} entries")
    return app
