"""Steward: a durable workflow engine for AI work, on Temporal.

This package is the core: pure types and rules shared by workflows, activities, workers and
the `steward` CLI. Nothing in its pure modules does I/O.
"""

import os

# litellm reads this once, when first imported, and would otherwise fetch its price map
# from the network (seconds of stalling offline). Every entry point (CLI, workers, eval
# worker, tests, bench) imports this package before litellm, so it is set here, in code.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
# The price map is not litellm's only fetch of its own: the first call to an Anthropic
# model fetches a beta-header table from GitHub, and some token counters fetch tokenizers.
# Offline mode makes every such fetch use the copy bundled in the wheel. An operator who
# wants them fresh can set LITELLM_OFFLINE_MODE=false in the worker's environment.
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
