"""The ``ledger`` command line: a thin adapter over the application service (commands/) and the read models (projections/)."""
