"""``python -m cli``: the ``ledger`` command."""

from cli.main import main

raise SystemExit(main())
