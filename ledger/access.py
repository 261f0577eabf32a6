"""Who may use the HTTP API, and the answers it already gave (idempotency).

Tokens: a bearer token is shown once, when created; only its SHA-256 is recorded, with its
name and role. Roles: ``clerk`` (reads and writes), ``auditor`` (reads everything, writes
nothing), ``admin`` (a clerk who may also manage tokens through the CLI).

Idempotency: the first successful answer to a write sent with an ``Idempotency-Key`` is recorded
with the SHA-256 of the request's canonical body; a repeat with the same key and body gets the
same answer, without doing the work again.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from ledger.errors import BusinessRuleViolation
from ledger.identity import NAMESPACE

ROLES = ("clerk", "auditor", "admin")


def access_id() -> UUID:
    return uuid5(NAMESPACE, "access")


def request_id(key: str) -> UUID:
    return uuid5(NAMESPACE, f"idempotency:{key}")


#: The longest name a token may have (it is printed in tables and recorded with every write).
NAME_SIZE = 64


class Access(Aggregate):
    """The API tokens of this ledger (one per store: tokens never reach another operator's)."""

    @staticmethod
    def create_id() -> UUID:
        return access_id()

    @event("Opened")
    def __init__(self) -> None:
        self.tokens: dict[str, dict[str, Any]] = {}  # token id → name, role, sha256, revoked

    def create(self, token_id: str, name: str, role: str, sha256: str) -> None:
        if role not in ROLES:
            raise BusinessRuleViolation(f"role must be one of {', '.join(ROLES)} (got {role!r})")
        if not name.strip() or not name.isprintable() or len(name) > NAME_SIZE:
            raise BusinessRuleViolation(
                f"a token's name is printable text of 1 to {NAME_SIZE} characters, without "
                f"control characters (got {name[:NAME_SIZE]!r}"
                f"{'…' if len(name) > NAME_SIZE else ''})")
        if any(t["name"] == name and not t["revoked"] for t in self.tokens.values()):
            raise BusinessRuleViolation(f"a token named {name!r} is already active: revoke it "
                                        "first, or choose another name")
        self._created(token_id=token_id, name=name, role=role, sha256=sha256)

    @event("TokenCreated")
    def _created(self, token_id: str, name: str, role: str, sha256: str) -> None:
        self.tokens[token_id] = {"name": name, "role": role, "sha256": sha256, "revoked": False}

    def revoke(self, name_or_id: str) -> str:
        """Revoke the active token with this id or this name; refused when it is the id of
        one and the name of another (ids are unique, and so are the names of active tokens)."""
        found = [token_id for token_id, token in self.tokens.items()
                 if (token_id == name_or_id or token["name"] == name_or_id)
                 and not token["revoked"]]
        if not found:
            raise BusinessRuleViolation(f"no active token named or numbered {name_or_id!r}")
        if len(found) > 1:
            numbered = name_or_id if name_or_id in found else None
            named = next(t for t in found if t != numbered)
            raise BusinessRuleViolation(
                f"{name_or_id!r} is the id of the token named "
                f"{self.tokens[numbered]['name']!r} and the name of token {named}: revoke by "
                f"{named} or by {self.tokens[numbered]['name']!r}")
        self._revoked(token_id=found[0])
        return found[0]

    @event("TokenRevoked")
    def _revoked(self, token_id: str) -> None:
        self.tokens[token_id]["revoked"] = True

    def role_of(self, sha256: str) -> tuple[str, str] | None:
        """(name, role) of the active token with this hash."""
        for token in self.tokens.values():
            if token["sha256"] == sha256 and not token["revoked"]:
                return token["name"], token["role"]
        return None


class ApiRequest(Aggregate):
    """The recorded answer to one idempotent write."""

    @staticmethod
    def create_id(key: str) -> UUID:
        return request_id(key)

    @event("Answered")
    def __init__(self, key: str, fingerprint: str, method: str, path: str, status: int,
                 body: dict[str, Any]) -> None:
        self.key, self.fingerprint = key, fingerprint
        self.method, self.path, self.status, self.body = method, path, status, body
