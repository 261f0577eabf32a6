"""Receipts of applied commands: the idempotency keys of imported lines."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.folding import created
from ledger.identity import receipt_id


class CommandReceipt(Aggregate):
    """Proof that the command with this id was applied, with the digest of its content.

    Saved in the same transaction as the events the command produced, so a
    receipt exists exactly when its command's events do.
    """

    @staticmethod
    def create_id(command_id: str) -> UUID:
        return receipt_id(command_id)

    @event("CommandApplied")
    def __init__(self, command_id: str, digest: str, command_type: str) -> None:
        _applied(self, {"command_id": command_id, "digest": digest,
                        "command_type": command_type})

    @classmethod
    def applied(cls, command_id: str, digest: str, command_type: str) -> CommandReceipt:
        """``CommandReceipt(command_id=…, digest=…, command_type=…)``, its ``CommandApplied``
        event pending, built without the library's generic construction (an import makes one
        per line: :func:`ledger.folding.created`)."""
        return created(cls, "CommandApplied", receipt_id(command_id),
                       {"command_id": command_id, "digest": digest,
                        "command_type": command_type}, _applied)


def _applied(receipt: CommandReceipt, fields: dict) -> None:
    """What ``CommandApplied`` does, whichever way it is applied."""
    receipt.command_id = fields["command_id"]
    receipt.digest = fields["digest"]
    receipt.command_type = fields["command_type"]
