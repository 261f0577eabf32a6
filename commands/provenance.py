"""Who did it and from where: the metadata recorded with every entry, covered by its leaf hash."""

from __future__ import annotations

import getpass
import hashlib
import os
from pathlib import Path
from typing import Any

from ledger.errors import LedgerError

ACTOR_VARIABLE = "LEDGER_ACTOR"


#: The longest actor recorded (a name, an e-mail address, a service's name).
ACTOR_SIZE = 200


def actor(by: str | None = None) -> str:
    """``--by``, else ``$LEDGER_ACTOR``, else the operating-system user; a name with control
    characters (which would be written to every terminal that shows the history) or longer
    than :data:`ACTOR_SIZE` is refused, naming where it came from."""
    if by is not None and by.strip():
        return checked_actor(by.strip(), "--by")
    if os.environ.get(ACTOR_VARIABLE, "").strip():
        return checked_actor(os.environ[ACTOR_VARIABLE].strip(), f"${ACTOR_VARIABLE}")
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def checked_actor(name: str, where: str) -> str:
    if not name.isprintable() or len(name) > ACTOR_SIZE:
        raise LedgerError(f"{where}: who did it is printable text of at most {ACTOR_SIZE} "
                          f"characters, without control characters (got "
                          f"{name[:40]!r}{'…' if len(name) > 40 else ''})")
    return name


def source(path: str | Path, content: bytes) -> dict[str, str]:
    """A file as recorded: its name and the SHA-256 of its bytes."""
    return {"file": Path(path).name, "sha256": hashlib.sha256(content).hexdigest()}


def metadata(via: str, by: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"actor": actor(by), "via": via, **{k: v for k, v in extra.items() if v is not None}}
