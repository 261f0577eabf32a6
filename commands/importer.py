"""``ledger import``: apply a file of commands, all or nothing, idempotently."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import attrs
from eventsourcing.persistence import IntegrityError

from commands.handlers import UnitOfWork, handle, touched_ids
from commands.messages import ParsedLine, parse_line
from commands.provenance import metadata, source as file_source
from eventstore.app import LedgerApplication
from ledger.errors import CommandIdReused, LedgerError
from ledger.receipt import CommandReceipt

#: How many bad lines are listed before the rest are only counted.
MAX_REPORTED_ERRORS = 50


@attrs.frozen
class LineError:
    line: int
    message: str


class ImportRejected(LedgerError):
    """The file had bad lines; nothing of it was stored."""

    def __init__(self, source: str, errors: list[LineError]) -> None:
        self.source = source
        self.errors = errors
        shown = [f"{source}, line {e.line}: {e.message}" for e in errors[:MAX_REPORTED_ERRORS]]
        if len(errors) > MAX_REPORTED_ERRORS:
            shown.append(f"… and {len(errors) - MAX_REPORTED_ERRORS} more bad lines")
        shown.append(f"Nothing from {source} was stored ({len(errors)} bad line(s)).")
        super().__init__("\n".join(shown))


@attrs.frozen
class ImportReport:
    source: str
    applied: int
    skipped: int
    events: int


def import_lines(
    app: LedgerApplication,
    lines: Iterable[str],
    source: str = "<input>",
    on_line: Callable[[], None] | None = None,
    by: str | None = None,
    origin: dict[str, str] | None = None,
) -> ImportReport:
    """Apply one command per line. Either every line is applied (or skipped as already applied)
    and stored in one transaction, or :class:`ImportRejected` lists the bad lines and nothing is
    stored.

    A line whose ``id`` was already applied with the same content is skipped; the
    same ``id`` with other content is a bad line. Every entry records who imported it
    (``by``), from which file (``origin``: name and SHA-256), and its command id and line.
    """
    uow = UnitOfWork(app)
    errors: list[LineError] = []
    applied = skipped = 0
    parsed_lines: list[tuple[int, ParsedLine | None]] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            parsed_lines.append((number, None))
            continue
        try:
            parsed_lines.append((number, parse_line(text)))
        except LedgerError as error:
            errors.append(LineError(number, str(error)))
            parsed_lines.append((number, None))
    uow.prefetch([i for _, p in parsed_lines if p is not None for i in touched_ids(p.command)])
    for number, parsed in parsed_lines:
        if on_line is not None:
            on_line()
        if parsed is None:
            continue
        try:
            command_id = parsed.command.id
            receipt = uow.receipt(command_id)
            if receipt is not None:
                if receipt.digest != parsed.digest:
                    raise CommandIdReused(
                        f"id {command_id!r} was already used for another command "
                        f"({receipt.command_type}) with different content"
                    )
                skipped += 1
                continue
            handle(parsed.command, uow)
            uow.add(CommandReceipt(command_id=command_id, digest=parsed.digest,
                                   command_type=parsed.type))
            uow.attribute(command=command_id, line=number)
            applied += 1
        except LedgerError as error:
            errors.append(LineError(number, str(error)))
    if errors:
        errors.sort(key=lambda e: e.line)
        raise ImportRejected(source, errors)
    changed = uow.changed()
    try:
        if origin is None and source != "<input>":
            origin = {"file": Path(source).name}
        recordings = app.save(*changed, metadata=metadata("import", by, source=origin),
                              event_metadata=uow.event_metadata) if changed else []
    except IntegrityError:
        raise LedgerError(
            f"the store was changed by another writer while {source} was being imported; "
            "nothing of it was stored — run the import again"
        ) from None
    return ImportReport(source, applied, skipped, len(recordings))


def import_file(
    app: LedgerApplication, path: str | Path, on_line: Callable[[], None] | None = None,
    by: str | None = None,
) -> ImportReport:
    """Import a JSON Lines file (UTF-8). See :func:`import_lines`."""
    path = Path(path)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise LedgerError(f"file not found: {path}") from None
    except OSError as error:
        raise LedgerError(f"cannot read {path}: {error.strerror}") from None
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise LedgerError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") \
            from None
    return import_lines(app, text.splitlines(), source=str(path), on_line=on_line, by=by,
                        origin=file_source(path, content))
