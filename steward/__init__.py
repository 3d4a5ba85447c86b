"""Steward: a durable workflow engine for AI work, on Temporal.

This package is the core: pure types and rules shared by workflows, activities, workers and
the `steward` CLI. Nothing in its pure modules does I/O.
"""

import os

# litellm reads this once, when first imported, and would otherwise fetch its price map
# from the network (seconds of stalling offline). Every entry point (CLI, workers, eval
# worker, tests, bench) imports this package before litellm, so it is set here, in code.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
