"""Who did it and from where: the metadata recorded with every entry, covered by its leaf hash."""

from __future__ import annotations

import getpass
import hashlib
import os
from pathlib import Path
from typing import Any

ACTOR_VARIABLE = "LEDGER_ACTOR"


def actor(by: str | None = None) -> str:
    """``--by``, else ``$LEDGER_ACTOR``, else the operating-system user."""
    if by is not None and by.strip():
        return by.strip()
    if os.environ.get(ACTOR_VARIABLE, "").strip():
        return os.environ[ACTOR_VARIABLE].strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def source(path: str | Path, content: bytes) -> dict[str, str]:
    """A file as recorded: its name and the SHA-256 of its bytes."""
    return {"file": Path(path).name, "sha256": hashlib.sha256(content).hexdigest()}


def metadata(via: str, by: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"actor": actor(by), "via": via, **{k: v for k, v in extra.items() if v is not None}}
