"""Bring in an embedded store written by an earlier Steward, with qdrant-client's local mode.

Steward used to keep embedded vectors with `QdrantClient(path=...)`: a `meta.json` and a
SQLite file per collection in the store's directory. The first open of such a directory
by the Edge store copies every collection across (vectors, payloads, and the metadata
that says which embedding model built it), then deletes the old files, so an upgrade
needs no re-ingest. Copying is by point id, so a copy cut short is simply done again.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient, models
from qdrant_client.client_base import QdrantBase

META = "meta.json"
"""The file by which qdrant-client's local mode knows its directory."""
PAGE = 256


def holds_local_store(path: Path) -> bool:
    """Whether `path` holds a store in qdrant-client's local format."""
    return (path / META).is_file()


def adopt_local_store(path: Path, into: QdrantBase) -> list[str]:
    """Copy each collection of the local-mode store at `path` into `into`; then delete the
    old files. Returns the collections copied.

    Raises RuntimeError (from qdrant-client) if another process has the old store open.
    """
    old = QdrantClient(path=str(path))
    try:
        names = sorted(found.name for found in old.get_collections().collections)
        for name in names:
            _copy(old, into, name)
    finally:
        old.close()
    (path / META).unlink()
    shutil.rmtree(path / "collection", ignore_errors=True)
    (path / ".lock").unlink(missing_ok=True)
    return names


def _copy(old: QdrantClient, into: QdrantBase, name: str) -> None:
    if not into.collection_exists(name):
        config = old.get_collection(name).config
        into.create_collection(
            name,
            vectors_config=config.params.vectors or {},
            sparse_vectors_config=config.params.sparse_vectors,
            metadata=config.metadata,
        )
    offset: Any = None
    while True:
        points, offset = old.scroll(
            name, limit=PAGE, offset=offset, with_payload=True, with_vectors=True
        )
        if points:
            into.upsert(
                name,
                points=[
                    models.PointStruct(
                        id=point.id, vector=point.vector or {}, payload=point.payload
                    )
                    for point in points
                ],
            )
        if offset is None:
            return
