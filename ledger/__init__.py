"""Domain of the subscription ledger: rules, money, dates, aggregates and events."""
