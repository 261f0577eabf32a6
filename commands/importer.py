"""``ledger import``: apply a file of commands, all or nothing, idempotently, in bounded memory.

Two passes over the file, which is read line by line and never held whole:

1. **syntax** — every line must be UTF-8 JSON holding an object. This pass only parses
   (orjson), so a malformed line anywhere is reported quickly, and nothing is opened for
   writing.
2. **fields and rules** — each line is checked field by field and applied to the ledger,
   in order, inside **one write transaction**: what changed is saved every few thousand
   commands within that transaction and forgotten, so memory does not grow with the file.
   If any line is bad, the transaction is rolled back: nothing of the file is stored, and
   every bad line is listed.

Lines are split on ``\\n`` only (a U+2028 inside a text is not a line break); a UTF-8 byte
order mark at the start is accepted.

The file's SHA-256, recorded with every entry as where it came from, is that of the bytes
applied: pass 2 hashes what it reads again, and if the file changed since pass 1 the import is
refused (nothing stored). A file that cannot be read twice — a pipe, a FIFO, a character device
such as ``/dev/stdin`` — is copied once, in blocks, to a temporary file that both passes read.
"""

from __future__ import annotations

import gc
import hashlib
import os
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import attrs
import orjson
from eventsourcing.persistence import IntegrityError

from commands.handlers import handle, touched_ids, touched_refs
from commands.messages import ParsedLine, parse_line
from commands.provenance import metadata
from commands.unit_of_work import UnitOfWork
from eventstore.app import LedgerApplication
from ledger.errors import CommandIdReused, LedgerError
from ledger.receipt import CommandReceipt

#: How many bad lines are listed before the rest are only counted.
MAX_REPORTED_ERRORS = 50
#: Lines parsed, looked up and applied together.
BATCH = 2_000
#: Commands applied between two saves inside the import's transaction.
FLUSH = 10_000
BOM = b"\xef\xbb\xbf"


@attrs.frozen
class LineError:
    line: int
    message: str


class ImportRejected(LedgerError):
    """The file had bad lines; nothing of it was stored."""

    def __init__(self, source: str, errors: list[LineError], total: int | None = None) -> None:
        self.source = source
        self.errors = errors
        total = total if total is not None else len(errors)
        shown = [f"{source}, line {e.line}: {e.message}" for e in errors[:MAX_REPORTED_ERRORS]]
        if total > MAX_REPORTED_ERRORS:
            shown.append(f"… and {total - MAX_REPORTED_ERRORS} more bad lines")
        shown.append(f"Nothing from {source} was stored ({total} bad line(s)).")
        super().__init__("\n".join(shown))


@attrs.frozen
class ImportReport:
    source: str
    applied: int
    skipped: int
    events: int
    lines: int = 0


class _Errors:
    """Bad lines: the first ones kept (in line order), the others counted."""

    def __init__(self) -> None:
        self.kept: list[LineError] = []
        self.total = 0

    def add(self, line: int, message: str) -> None:
        self.total += 1
        self.kept.append(LineError(line, message))
        if len(self.kept) > 4 * MAX_REPORTED_ERRORS:
            self.kept.sort(key=lambda e: e.line)
            del self.kept[MAX_REPORTED_ERRORS:]

    def reject(self, source: str) -> ImportRejected:
        self.kept.sort(key=lambda e: e.line)
        return ImportRejected(source, self.kept[:MAX_REPORTED_ERRORS], self.total)


# Reading --------------------------------------------------------------------------------------

def _raw_lines(handle: BinaryIO, sha256: str, source: str) -> Iterator[tuple[int, bytes]]:
    """Pass 2's reading: (number, bytes) of each line of ``handle`` from where it stands, split
    on b"\\n" only, without its end of line or BOM. The bytes are hashed again as they are
    read: once the last line is read, if they are not those pass 1 hashed (``sha256``, what
    every entry records as where it came from), the file changed in between and the import is
    refused — raised inside the import's transaction, so nothing of it is stored."""
    digest = hashlib.sha256()
    update = digest.update
    try:
        for number, raw in enumerate(handle, start=1):
            update(raw)
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            yield number, raw.rstrip(b"\r\n")
    except OSError as error:
        raise LedgerError(_unreadable(source, error)) from None
    if digest.hexdigest() != sha256:
        raise LedgerError(f"{source} changed while it was being imported: nothing was stored")


def _decoded(number: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise LedgerError(f"not UTF-8 text: byte 0x{raw[error.start]:02X} at column "
                          f"{error.start + 1} is not valid UTF-8") from None


def _syntax(lines: Iterable[tuple[int, bytes]], errors: _Errors) -> int:
    """Pass 1: every non-blank line is a JSON object. Returns the number of lines.

    Kept to the bare parse — it is what makes a malformed line anywhere in a file of a
    million lines reported in about the time orjson takes to read the file."""
    count = 0
    loads = orjson.loads
    for number, raw in lines:
        count = number
        try:
            value = loads(raw)
        except orjson.JSONDecodeError as error:
            if not raw.strip():
                continue  # a blank line
            try:
                _decoded(number, raw)
            except LedgerError as bad:
                errors.add(number, str(bad))
                continue
            # The line still has its end of line: an error past it (a closing brace missing)
            # is at the end of the line, not at column 1 of the next.
            where = f"column {error.colno}" if error.lineno == 1 else "the end of the line"
            errors.add(number, f"not valid JSON ({error.msg} at {where})")
            continue
        if type(value) is not dict:
            errors.add(number, "expected a JSON object {...}")
    return count


def _file_lines(handle: BinaryIO, digest: hashlib._Hash,
                source: str) -> Iterator[tuple[int, bytes]]:
    """Pass 1's reading: (number, bytes with their end of line — orjson ignores it), the file's
    bytes fed to ``digest`` as they are, a byte order mark dropped from the first line."""
    update = digest.update
    try:
        for number, raw in enumerate(handle, start=1):
            update(raw)
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            yield number, raw
    except OSError as error:
        raise LedgerError(_unreadable(source, error)) from None


def _unreadable(source: str | Path, error: OSError) -> str:
    return f"cannot read {source}: {error.strerror or error}"


# Applying -------------------------------------------------------------------------------------

class _Collector:
    """How many imports have paused Python's cyclic garbage collector, and whether it ran
    before the first of them (the API may run imports in several threads)."""

    lock = threading.Lock()
    pauses = 0
    was_enabled = False


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for the length of an import.

    An import keeps each batch of lines, their commands and events alive long enough for the
    collector to move them to its oldest generation, where they are freed by reference counting
    soon after; every so often that generation's growth set off a full collection, which walks
    every object the process holds — and an import holds more of them the more it has read
    (the ids it has worked out, the aggregates of the batch). At a million events that was 91
    full collections and a third of the import's time; an import makes almost no cyclic
    garbage (1 897 objects, for 100 000 events as for 1 000 000), so there is nothing for the
    collector to do meanwhile. Measured in docs/performance.md ("Import: the garbage collector
    paused")."""
    with _Collector.lock:
        if _Collector.pauses == 0:
            _Collector.was_enabled = gc.isenabled()
            gc.disable()
        _Collector.pauses += 1
    try:
        yield
    finally:
        with _Collector.lock:
            _Collector.pauses -= 1
            if _Collector.pauses == 0 and _Collector.was_enabled:
                gc.enable()


def _apply(app: LedgerApplication, lines: Iterable[tuple[int, bytes]], source: str,
           on_line: Callable[[], None] | None, by: str | None,
           origin: dict[str, str] | None, via: str = "import",
           extra: dict[str, Any] | None = None,
           also: Callable[[ImportReport], Iterable[Any]] | None = None) -> ImportReport:
    """Pass 2: fields and rules, in one write transaction; rolled back if any line is bad."""
    with _collector_paused():
        return _applied(app, lines, source, on_line, by, origin, via, extra, also)


def _applied(app: LedgerApplication, lines: Iterable[tuple[int, bytes]], source: str,
             on_line: Callable[[], None] | None, by: str | None,
             origin: dict[str, str] | None, via: str,
             extra: dict[str, Any] | None,
             also: Callable[[ImportReport], Iterable[Any]] | None) -> ImportReport:
    errors = _Errors()
    applied = skipped = events = count = 0
    common = metadata(via, by, source=origin, **(extra or {}))
    with app.session() as session:
        uow = UnitOfWork(app, session)
        since_flush = 0
        batch: list[tuple[int, bytes]] = []

        def run(batch: list[tuple[int, bytes]]) -> None:
            nonlocal applied, skipped, since_flush
            parsed: list[tuple[int, ParsedLine]] = []
            for number, raw in batch:
                try:
                    parsed.append((number, parse_line(_decoded(number, raw))))
                except LedgerError as error:
                    errors.add(number, str(error))
            uow.prefetch([i for _, p in parsed for i in touched_ids(p.command)],
                         [r for _, p in parsed for r in touched_refs(p.command)])
            for number, line in parsed:
                try:
                    command_id = line.command.id
                    receipt = uow.receipt(command_id)
                    if receipt is not None:
                        if receipt.digest != line.digest:
                            raise CommandIdReused(
                                f"id {command_id!r} was already used for another command "
                                f"({receipt.command_type}) with different content")
                        skipped += 1
                        continue
                    handle(line.command, uow)
                    uow.add(CommandReceipt.applied(command_id, line.digest, line.type))
                    uow.attribute(command=command_id, line=number)
                    applied += 1
                    since_flush += 1
                except LedgerError as error:
                    errors.add(number, str(error))

        for number, raw in lines:
            count = number
            if on_line is not None:
                on_line()
            if raw.strip():
                batch.append((number, raw))
            if len(batch) >= BATCH:
                run(batch)
                batch = []
                if since_flush >= FLUSH:
                    # Saved inside the transaction, so that memory does not grow with the file;
                    # still rolled back if a later line is bad.
                    events += _flush(uow, common, source)
                    since_flush = 0
        run(batch)
        if errors.total:
            raise errors.reject(source)  # the session rolls back: nothing is stored
        events += _flush(uow, common, source)
        report = ImportReport(source, applied, skipped, events, count)
        if also is not None:
            session.save(*also(report), metadata=common)
    return report


def _flush(uow: UnitOfWork, common: dict, source: str) -> int:
    try:
        return uow.flush(common)
    except IntegrityError:
        raise LedgerError(
            f"the store was changed by another writer while {source} was being imported; "
            "nothing of it was stored — run the import again") from None


def import_lines(
    app: LedgerApplication,
    lines: Iterable[str],
    source: str = "<input>",
    on_line: Callable[[], None] | None = None,
    by: str | None = None,
    origin: dict[str, str] | None = None,
    via: str = "import",
    extra: dict[str, Any] | None = None,
    also: Callable[[ImportReport], Iterable[Any]] | None = None,
) -> ImportReport:
    """Apply one command per line. Either every line is applied (or skipped as already applied)
    and stored in one transaction, or :class:`ImportRejected` lists the bad lines and nothing is
    stored.

    A line whose ``id`` was already applied with the same content is skipped; the
    same ``id`` with other content is a bad line. Every entry records who imported it
    (``by``), from which file (``origin``: name and SHA-256), and its command id and line;
    ``via`` and ``extra`` (a reason, a comment, an idempotency key) say through what;
    ``also`` gives more aggregates to save in the same transaction, from the report (an HTTP
    request's idempotency record).
    """
    numbered = [(number, text.encode("utf-8")) for number, text in enumerate(lines, start=1)]
    errors = _Errors()
    _syntax(numbered, errors)
    if errors.total:
        raise errors.reject(source)
    if origin is None and source != "<input>":
        origin = {"file": Path(source).name}
    return _apply(app, numbered, source, on_line, by, origin, via, extra, also)


def import_file(
    app: LedgerApplication, path: str | Path, on_line: Callable[[], None] | None = None,
    by: str | None = None,
) -> ImportReport:
    """Import a JSON Lines file (UTF-8), streaming. See :func:`import_lines`.

    A regular file is read twice and its bytes hashed each time: if they differ, it changed
    while it was being imported, and nothing is stored. Anything else — a pipe, a FIFO, a
    character device — is read once, copied in blocks to a temporary file (in ``$TMPDIR``)
    that both passes read."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise LedgerError(f"file not found: {path}") from None
    except IsADirectoryError:
        raise LedgerError(f"{path} is a folder, not a file of commands") from None
    except OSError as error:
        raise LedgerError(_unreadable(path, error)) from None
    with handle:
        if stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return _import_read_twice(app, path, handle, on_line, by)
        copy = _copied(handle, path)  # read to its end, then closed: it is not read again
    with copy:  # recorded by its whole path: a pipe's name alone says nothing (stdin, 63)
        return _import_read_twice(app, path, copy, on_line, by, name=str(path))


#: How much of a pipe is copied to the temporary file at a time.
COPY_BLOCK = 1 << 20


def _copied(handle: BinaryIO, path: Path) -> BinaryIO:
    """A temporary file (deleted once closed) holding what ``handle`` gave up to its end,
    copied in blocks so that memory does not grow with the file."""
    def refused(error: OSError) -> LedgerError:  # the temporary folder full, or not writable
        return LedgerError(f"cannot copy {path} to a temporary file in {tempfile.gettempdir()}: "
                           f"{error.strerror or error}; nothing was stored")

    try:
        copy = tempfile.TemporaryFile(prefix="ledger-import-")
    except OSError as error:
        raise refused(error) from None
    try:
        while True:
            try:
                block = handle.read(COPY_BLOCK)
            except OSError as error:
                raise LedgerError(_unreadable(path, error)) from None
            if not block:
                return copy
            try:
                copy.write(block)
            except OSError as error:
                raise refused(error) from None
    except BaseException:
        copy.close()
        raise


def _import_read_twice(app: LedgerApplication, path: Path, handle: BinaryIO,
                       on_line: Callable[[], None] | None, by: str | None,
                       name: str | None = None) -> ImportReport:
    """Pass 1 over ``handle`` from its start, then pass 2 over it again from its start: the
    SHA-256 recorded is that of the bytes pass 1 read, which pass 2 checks it applied."""
    source = str(path)
    digest = hashlib.sha256()
    errors = _Errors()
    handle.seek(0)
    _syntax(_file_lines(handle, digest, source), errors)
    if errors.total:
        raise errors.reject(source)
    sha256 = digest.hexdigest()
    handle.seek(0)
    return _apply(app, _raw_lines(handle, sha256, source), source, on_line, by,
                  {"file": name or path.name, "sha256": sha256})
