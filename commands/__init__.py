"""The write side and the application service: command messages, their handlers and unit of
work, the importer, billing runs, corrections, checks of issued documents, the audit service,
and the read queries (views) that the CLI and the HTTP API share."""
