"""``python -m emkit``: the command-line tool (see :mod:`emkit.cli`)."""

from .cli import main

raise SystemExit(main())
