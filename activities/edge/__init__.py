"""The embedded vector store: Qdrant Edge behind qdrant-client's interface.

`EdgeQdrant` is what `VectorStore` opens when no Qdrant server is configured;
`adopt_local_store` brings in a store an earlier Steward wrote with qdrant-client's
local mode.
"""

from activities.edge.adopt import adopt_local_store, holds_local_store
from activities.edge.convert import Unsupported
from activities.edge.store import EdgeQdrant, ShardInUse

__all__ = ["EdgeQdrant", "ShardInUse", "Unsupported", "adopt_local_store", "holds_local_store"]
