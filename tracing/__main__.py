"""`python -m tracehouse` runs the CLI."""

from tracehouse.cli.main import main

raise SystemExit(main())
