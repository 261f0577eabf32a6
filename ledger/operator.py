"""The operator itself (syndicat mixte, GIP): the seller named on every invoice."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.identity import operator_id


class Operator(Aggregate):
    """Who issues the invoices of this ledger. One per store; registering again updates it."""

    @staticmethod
    def create_id() -> UUID:
        return operator_id()

    @event("Opened")
    def __init__(self) -> None:
        self.profile: dict[str, Any] | None = None

    def register(self, profile: dict[str, Any]) -> bool:
        """Record the operator's name, SIRET, address (and VAT number, IBAN). ``False`` if unchanged."""
        if profile == self.profile:
            return False
        self._registered(profile=profile)
        return True

    @event("OperatorRegistered")
    def _registered(self, profile: dict[str, Any]) -> None:
        self.profile = dict(profile)
