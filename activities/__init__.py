"""Every side effect Steward has: model calls, tools, notifications.

Activities are methods of classes whose clients are injected by a worker; nothing is built
at import. Errors are classified here, where the activity meets the outside world.
"""

import steward  # noqa: F401  (before litellm: keeps its price map offline)
