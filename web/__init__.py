"""``ledger serve``: the HTTP API and the auditors' web view, thin adapters over the same services as the CLI."""
