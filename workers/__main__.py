"""`python -m workers`: run Steward's workers until interrupted (see `steward worker`)."""

from __future__ import annotations

from workers.run import main

main()
