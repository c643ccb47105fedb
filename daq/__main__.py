"""``python -m daq`` runs the ``daq`` command."""

from daq.cli import main

raise SystemExit(main())
