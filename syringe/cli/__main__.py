"""`python -m syringe.cli`: the same as the `syringe` command."""

from syringe.cli import main

raise SystemExit(main())
