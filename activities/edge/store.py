"""The embedded vector store: qdrant-client's interface over Qdrant Edge shards.

Retrieval talks to every store through qdrant-client's interface (`QdrantBase`, which
`QdrantClient` implements for a server). This class implements the part of it Steward
uses on Qdrant Edge, Qdrant's own engine run in-process: one Edge shard per collection,
in one directory owned by one process. Unlike qdrant-client's local mode (which keeps
every vector in memory and compares the query with all of them in Python), Edge keeps
HNSW graphs, payload indexes on the fields searches and deletes filter by, and a
write-ahead log, so a search visits a small part of a large collection.

Layout of the directory: `steward.lock` (held while a process has the store open) and
`edge/<collection>/` (see `activities/edge/collection.py`). Methods outside that part of
the interface raise NotImplementedError, as `QdrantBase` does.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import qdrant_edge as edge
from qdrant_client import models
from qdrant_client.client_base import QdrantBase
from qdrant_client.http.models import QueryResponse  # `models` has fastembed's of that name

from activities.edge import convert
from activities.edge.collection import SETTINGS, Collection, Settings, Tuning
from activities.edge.index import Indexer

LOCK = "steward.lock"
DATA = "edge"
QUIET_SECONDS = 5.0
"""How long a collection goes without writes before its index is built."""


class ShardInUse(RuntimeError):
    """Another process (or another open store in this one) has the directory."""


class EdgeQdrant(QdrantBase):
    """Collections as Qdrant Edge shards under `path`; one process opens it at a time.

    `keyword_fields` are payload fields every new collection indexes (what searches and
    deletes filter on); `tuning` is when its segments get an HNSW graph. Graphs are built
    in the background (`activities/edge/index.py`); `build_index` builds one now.
    """

    def __init__(
        self,
        path: Path,
        *,
        keyword_fields: Sequence[str] = (),
        tuning: Tuning | None = None,
        quiet_seconds: float = QUIET_SECONDS,
    ) -> None:
        super().__init__()
        self.path = path
        self.keyword_fields = list(keyword_fields)
        self._lock = threading.RLock()
        self.tuning = tuning or Tuning()
        path.mkdir(parents=True, exist_ok=True)
        self._lockfile = _take(path / LOCK)
        self._folder = path / DATA
        try:
            self._folder.mkdir(exist_ok=True)
            self._collections = {
                folder.name: Collection.open(folder)
                for folder in sorted(self._folder.iterdir())
                # a name with a leading dot is a collection still being created
                if not folder.name.startswith(".") and (folder / SETTINGS).is_file()
            }
        except BaseException:
            self._lockfile.close()
            raise
        self._indexer = Indexer(self._lock, self._get, quiet_seconds=quiet_seconds)
        for name, collection in self._collections.items():
            self._indexer.wrote(name, collection.owes_index)  # one the last process owed

    # --- collections -------------------------------------------------------------------

    def collection_exists(self, collection_name: str, **kwargs: Any) -> bool:
        """Whether the collection exists."""
        with self._lock:
            return collection_name in self._collections

    def create_collection(
        self,
        collection_name: str,
        vectors_config: models.VectorParams | Mapping[str, models.VectorParams],
        sparse_vectors_config: Mapping[str, models.SparseVectorParams] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> bool:
        """Create a collection of named dense (and sparse) vectors, with its metadata."""
        _refuse(kwargs)
        if not isinstance(vectors_config, Mapping):
            raise convert.Unsupported("unnamed vectors (collections here name theirs)")
        settings = Settings(
            vectors=dict(vectors_config),
            sparse_vectors=dict(sparse_vectors_config or {}),
            metadata=metadata,
            keyword_fields=self.keyword_fields,
            tuning=self.tuning,
        )
        with self._lock:
            if collection_name in self._collections:
                raise ValueError(f"collection {collection_name!r} already exists")
            self._collections[collection_name] = Collection.create(
                self._folder / collection_name, settings
            )
        return True

    def get_collection(self, collection_name: str, **kwargs: Any) -> models.CollectionInfo:
        """The collection's settings and counts, as a server reports them."""
        with self._lock:
            if self._indexer.building == collection_name:
                status = models.CollectionStatus.YELLOW
            elif self._indexer.due(collection_name):
                status = models.CollectionStatus.GREY
            else:
                status = models.CollectionStatus.GREEN
            return self._get(collection_name).info(status)

    def build_index(self, collection_name: str) -> None:
        """Build the collection's HNSW index now (the background builds it when due)."""
        self._indexer.build(collection_name)

    # --- writes ----------------------------------------------------------------------

    def upsert(
        self, collection_name: str, points: Any, wait: bool = True, **kwargs: Any
    ) -> models.UpdateResult:
        """Store points (a list of `PointStruct`), replacing any of the same id."""
        _refuse(kwargs)
        if not isinstance(points, list):
            raise convert.Unsupported("points given other than as a list of PointStruct")
        converted = [convert.point(point) for point in points]
        return self._write(
            collection_name, edge.UpdateOperation.upsert_points(converted), len(converted)
        )

    def delete(
        self, collection_name: str, points_selector: Any, wait: bool = True, **kwargs: Any
    ) -> models.UpdateResult:
        """Delete points by id or by filter."""
        _refuse(kwargs)
        chosen = convert.selector(points_selector)
        if isinstance(chosen, list):
            return self._write(
                collection_name, edge.UpdateOperation.delete_points(chosen), len(chosen)
            )
        with self._lock:
            found = self._get(collection_name).shard.count(
                edge.CountRequest(filter=chosen, exact=True)
            )
            return self._write(
                collection_name, edge.UpdateOperation.delete_points_by_filter(chosen), found
            )

    def _write(
        self, name: str, operation: edge.UpdateOperation, points: int
    ) -> models.UpdateResult:
        with self._lock:
            collection = self._get(name)
            collection.update(operation, points)
            self._indexer.wrote(name, collection.owes_index)
        return models.UpdateResult(status=models.UpdateStatus.COMPLETED)

    # --- reads -----------------------------------------------------------------------

    def query_points(
        self,
        collection_name: str,
        query: Any = None,
        using: str | None = None,
        prefetch: models.Prefetch | list[models.Prefetch] | None = None,
        query_filter: Any = None,
        search_params: Any = None,
        limit: int = 10,
        offset: int | None = None,
        with_payload: Any = True,
        with_vectors: Any = False,
        score_threshold: float | None = None,
        lookup_from: Any = None,
        **kwargs: Any,
    ) -> QueryResponse:
        """Nearest points to a vector, or prefetched candidates fused by rank."""
        _refuse({"lookup_from": lookup_from, **kwargs})
        request = edge.QueryRequest(
            limit=limit,
            offset=offset,
            query=convert.query(query, using),
            prefetches=convert.prefetches(prefetch),
            filter=convert.filter_(query_filter),
            score_threshold=score_threshold,
            params=convert.search_params(search_params),
            with_payload=convert.with_payload(with_payload),
            with_vector=convert.with_vectors(with_vectors),
        )
        with self._lock:
            found = self._get(collection_name).shard.query(request)
        return QueryResponse(points=[convert.scored(point) for point in found])

    def scroll(
        self,
        collection_name: str,
        scroll_filter: Any = None,
        limit: int = 10,
        order_by: Any = None,
        offset: Any = None,
        with_payload: Any = True,
        with_vectors: Any = False,
        **kwargs: Any,
    ) -> tuple[list[models.Record], Any]:
        """A page of points in id order, and the id the next page starts from (or None)."""
        _refuse(kwargs)
        if order_by is not None:
            raise convert.Unsupported("order_by")
        request = edge.ScrollRequest(
            offset=None if offset is None else convert.point_id(offset),
            limit=limit,
            filter=convert.filter_(scroll_filter),
            with_payload=convert.with_payload(with_payload),
            with_vector=convert.with_vectors(with_vectors),
        )
        with self._lock:
            found, following = self._get(collection_name).shard.scroll(request)
        return (
            [convert.record(point) for point in found],
            None if following is None else convert.stored_id(following),
        )

    def count(
        self,
        collection_name: str,
        count_filter: Any = None,
        exact: bool = True,
        **kwargs: Any,
    ) -> models.CountResult:
        """How many points match the filter."""
        _refuse(kwargs)
        request = edge.CountRequest(filter=convert.filter_(count_filter), exact=exact)
        with self._lock:
            return models.CountResult(count=self._get(collection_name).shard.count(request))

    def retrieve(
        self,
        collection_name: str,
        ids: Sequence[Any],
        with_payload: Any = True,
        with_vectors: Any = False,
        **kwargs: Any,
    ) -> list[models.Record]:
        """The points of these ids that exist."""
        _refuse(kwargs)
        with self._lock:
            found = self._get(collection_name).shard.retrieve(
                [convert.point_id(one) for one in ids],
                with_payload=convert.with_payload(with_payload),
                with_vector=convert.with_vectors(with_vectors),
            )
        return [convert.record(point) for point in found]

    # --- lifetime --------------------------------------------------------------------

    def close(self, **kwargs: Any) -> None:
        """Stop index builds, flush every shard and let another process open the store."""
        self._indexer.close()  # not under the lock: a build may need it to finish
        with self._lock:
            for collection in self._collections.values():
                collection.close()
            self._collections = {}
            if not self._lockfile.closed:
                self._lockfile.close()  # closing the file releases its lock

    def _get(self, name: str) -> Collection:
        try:
            return self._collections[name]
        except KeyError:
            raise ValueError(f"Collection {name} not found") from None


def _take(path: Path) -> IO[str]:
    """Hold an exclusive lock on `path` for as long as the returned file stays open."""
    handle = path.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ShardInUse(f"{path.parent} is open in another process") from None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")  # who has it, for a person looking
    handle.flush()
    return handle


_IGNORED = {"wait", "timeout", "consistency", "shard_key_selector", "ordering"}


def _refuse(options: Mapping[str, Any]) -> None:
    """Refuse options the embedded store would otherwise ignore (ones that only tune a
    server's behaviour are harmless).
    """
    for name, value in options.items():
        if value is not None and name not in _IGNORED:
            raise convert.Unsupported(f"the {name!r} option")
