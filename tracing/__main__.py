"""`python -m tracehouse` runs the CLI."""

from tracehouse._cli import main

raise SystemExit(main())
