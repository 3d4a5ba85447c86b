"""`python -m steward.cli`: the same as the `steward` script."""

from steward.cli import main

main()
