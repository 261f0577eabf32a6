"""Errors a user can cause. Their message is meant for the person who typed the input."""


class LedgerError(Exception):
    """Base class of every error the ledger reports to a user without a traceback."""


class InvalidCommand(LedgerError):
    """A command is malformed: wrong field, wrong type, impossible value."""


class BusinessRuleViolation(LedgerError):
    """A command is well-formed but the order form's rules forbid it."""


class NotFound(LedgerError):
    """What was asked for (a customer, a domain, a document, a proposal) is not in the ledger:
    the API answers 404."""


class UnknownCustomer(NotFound):
    def __init__(self, customer: str) -> None:
        super().__init__(f"unknown customer {customer!r}: register it first (register_customer)")
        self.customer = customer


class UnknownDomain(NotFound):
    def __init__(self, domain: str, as_of: object = None) -> None:
        when = f" as of {as_of}" if as_of is not None else ""
        super().__init__(f"no order form for domain {domain!r}{when}")
        self.domain = domain


class CommandIdReused(LedgerError):
    """An idempotency key already applied with different content."""


class StoreError(LedgerError):
    """The store cannot be opened or written."""
