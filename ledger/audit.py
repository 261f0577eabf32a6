"""The operator's audit trail: its signing keys and the checkpoints it signed.

The keys and signatures themselves are handled outside the domain
(``eventstore.notes``); the ledger records the public keys an auditor may
trust and every signed checkpoint, so that ``ledger audit verify`` can check
each one against the log as it is now.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.errors import BusinessRuleViolation
from ledger.identity import audit_id


class Audit(Aggregate):
    """Public keys registered and checkpoints signed, in order. One per store."""

    @staticmethod
    def create_id() -> UUID:
        return audit_id()

    @event("Opened")
    def __init__(self) -> None:
        self.keys: tuple[str, ...] = ()
        self.checkpoints: tuple[dict[str, object], ...] = ()

    def register_key(self, verifier_key: str) -> bool:
        """Record a public (verifier) key. ``False`` if it was already registered."""
        if verifier_key in self.keys:
            return False
        self._key_registered(verifier_key=verifier_key)
        return True

    @event("KeyRegistered")
    def _key_registered(self, verifier_key: str) -> None:
        self.keys = (*self.keys, verifier_key)

    def record_checkpoint(self, *, origin: str, size: int, root: str, note: str) -> None:
        """Record a checkpoint the operator signed. Trees only grow."""
        if self.checkpoints and size < int(self.checkpoints[-1]["size"]):
            raise BusinessRuleViolation(
                f"a checkpoint of {self.checkpoints[-1]['size']} entries was already signed: "
                f"a tree of {size} entries cannot follow it")
        self._checkpoint_recorded(origin=origin, size=size, root=root, note=note)

    @event("CheckpointRecorded")
    def _checkpoint_recorded(self, origin: str, size: int, root: str, note: str) -> None:
        self.checkpoints = (*self.checkpoints,
                            {"origin": origin, "size": size, "root": root, "note": note})

    @property
    def latest_checkpoint(self) -> dict[str, object] | None:
        return self.checkpoints[-1] if self.checkpoints else None
