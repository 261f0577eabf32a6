"""Commands: messages, handlers, the application service and the ``ledger`` CLI."""
