"""Retrieval activities: scan, embed and store documents in Qdrant; search them with citations.

Every write is idempotent so Temporal can retry any of them: a chunk's point id is derived
from its folder, file, content hash and position, so a batch stored twice is stored once.
A new version of a file that spans several batches is written to the collection's
staging twin and moved into the collection by its last batch, and only then are the old
version's chunks deleted: a search never sees half a document, and a failed file leaves
its previous version in place. Keeping unfinished chunks out of the searched collection
(rather than flagging them) means a plain search needs no filter.

The store is injected (`VectorStore`): embedded (Qdrant Edge in this worker's process, in
a directory it owns) by default, a Qdrant server when the worker's environment names one;
both are driven through qdrant-client's interface. Activities here are synchronous and
run in the worker's thread pool; calls to the store are serialised by its lock.
The Qdrant client is imported when retrieval is first used, not with this module, which
every workflow imports to refer to these activities.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.documents import (
    SUPPORTED,
    Chunk,
    DocumentError,
    chunk_sections,
    read_sections,
    sha256_file,
)
from activities.embeddings import Embedder, keyword_vector
from steward.errors import (
    BAD_DOCUMENT,
    BAD_INPUT,
    EMBEDDER_MISMATCH,
    NO_COLLECTION,
    STORE_LOCKED,
    application_error,
)
from steward.models import Citation, ToolInvocation, ToolResult, problems
from steward.retrieval import (
    DATA_NOT_INSTRUCTIONS,
    BatchResult,
    DocumentBatch,
    FileProblem,
    FileRef,
    FileVersion,
    IngestRequest,
    PruneResult,
    RetrievedChunk,
    RetrieveRequest,
    RetrieveResult,
    ScanPage,
    ScanRequest,
    SearchDocsArgs,
    quote_documents,
)

if TYPE_CHECKING:
    from qdrant_client import models
    from qdrant_client.client_base import QdrantBase

DENSE = "dense"
SPARSE = "keywords"
FILTERED = ("root", "source", "sha256", "tags")
"""Payload fields that searches and deletes filter on (the embedded store indexes them)."""
_POINTS = uuid.UUID("6f1d3a52-8c1e-4b7a-9a55-2f4f8f0f2c11")
T = TypeVar("T")
log = logging.getLogger(__name__)


def estimate_tokens(text: str) -> int:
    """Tokens in `text`, estimated at four characters each (the budget is approximate)."""
    return max(1, len(text) // 4)


class VectorStore:
    """The vector store, opened on first use: embedded at `path`, or a server at `url`.

    Embedded is Qdrant Edge (`activities/edge/`) behind qdrant-client's interface; a server
    is `QdrantClient`. Either way an operation receives a `QdrantBase` and the same code
    runs on both. An embedded directory an earlier Steward wrote with qdrant-client's
    local mode is brought into Edge when first opened.
    """

    def __init__(
        self, *, path: Path | None = None, url: str | None = None, api_key: str | None = None
    ) -> None:
        if (path is None) == (url is None):
            raise ValueError("give the embedded store's path or a server's url")
        self.path, self.url, self._api_key = path, url, api_key
        self._client: QdrantBase | None = None
        self._lock = threading.RLock()

    @property
    def where(self) -> str:
        """The store, for messages (a server's address or the embedded directory)."""
        return self.url or f"embedded store {self.path}"

    def run(self, operation: Callable[[QdrantBase], T]) -> T:
        """Run one operation on the client, one at a time (the embedded store's calls hold
        the interpreter anyway, and its index swaps must not meet a search half-way).
        """
        with self._lock:
            return operation(self._open())

    def _open(self) -> QdrantBase:
        from qdrant_client import QdrantClient

        if self._client is None:
            if self.url is not None:
                self._client = QdrantClient(url=self.url, api_key=self._api_key, timeout=30)
            else:
                assert self.path is not None
                self._client = _embedded(self.path)
        return self._client

    def close(self) -> None:
        """Release the store (an embedded one unlocks its directory)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _embedded(path: Path) -> QdrantBase:
    """Open the embedded store at `path`, bringing in an older store's collections."""
    from activities.edge import EdgeQdrant, ShardInUse, adopt_local_store, holds_local_store

    try:
        store = EdgeQdrant(path, keyword_fields=FILTERED)
    except ShardInUse:
        raise _locked(path) from None
    try:
        if holds_local_store(path):
            adopted = adopt_local_store(path, store)
            log.warning(
                "moved %d collections (%s) of %s from qdrant-client's local format into "
                "Qdrant Edge",
                len(adopted),
                ", ".join(adopted),
                path,
            )
    except RuntimeError as err:
        store.close()
        if "already accessed" not in str(err):
            raise
        raise _locked(path) from None
    except BaseException:
        store.close()
        raise
    return store


def _locked(path: Path) -> ApplicationError:
    return application_error(
        STORE_LOCKED,
        f"the embedded Qdrant store {path} is open in another process (one worker owns it; "
        "run retrieval on that worker, or set QDRANT_URL to share a Qdrant server)",
    )


class RetrievalActivities:
    """Ingest and search, over an injected store and embedding model."""

    def __init__(
        self,
        store: VectorStore,
        embedder: Callable[[], Embedder],
        *,
        chunk_tokens: int = 200,
        max_file_bytes: int = 20_000_000,
    ) -> None:
        self.store = store
        self._make_embedder = embedder
        self._embedder: Embedder | None = None
        self._embedder_lock = threading.Lock()
        self.chunk_tokens = chunk_tokens
        self.max_file_bytes = max_file_bytes
        # Batches of one file usually reach the same worker one after another; keeping the
        # last file's chunks saves re-reading a large file for every batch.
        self._chunked: tuple[tuple[str, str, str], list[Chunk]] | None = None

    @property
    def embedder(self) -> Embedder:
        """The embedding model, loaded on first use (not when the worker starts)."""
        with self._embedder_lock:
            if self._embedder is None:
                self._embedder = self._make_embedder()
            return self._embedder

    # --- ingest ----------------------------------------------------------------------

    @activity.defn(name="scan_documents")
    def scan_documents(self, request: ScanRequest) -> ScanPage:
        """List one page of the folder's documents, each with its hash and what changed."""
        ingest = request.ingest
        root = Path(ingest.root)
        if not root.exists():
            raise application_error(
                BAD_INPUT, f"{root} does not exist (give a folder or a file the worker can read)"
            )
        self.ensure_collection(ingest.collection, create=True)
        everything = list(_documents(root))
        page = everything[request.offset : request.offset + request.limit]
        stored = self._stored_versions(ingest)
        files, refused = [], []
        for path in page:
            source = _source(root, path)
            activity.heartbeat(source)
            try:
                size = path.stat().st_size
                if size > self.max_file_bytes:
                    raise DocumentError(
                        f"{size:,} bytes is over the {self.max_file_bytes:,}-byte limit per file "
                        "(retrieval.max_file_bytes)"
                    )
                digest = sha256_file(path)
            except (OSError, DocumentError) as err:
                refused.append(FileProblem(source=source, reason=_reason(err)))
                continue
            versions = stored.get(source, set())
            status = "unchanged" if versions == {digest} else "changed" if versions else "new"
            files.append(FileRef(source=source, sha256=digest, size=size, status=status))
        end = request.offset + len(page)
        return ScanPage(
            files=files,
            problems=refused,
            next_offset=end if end < len(everything) else None,
            total=len(everything),
        )

    @activity.defn(name="ingest_document")
    def ingest_document(self, batch: DocumentBatch) -> BatchResult:
        """Embed and store one batch of a file's chunks; the last batch publishes the file.

        A file of one batch is written straight into the collection. A longer one is
        staged batch by batch, and its last batch moves it into the collection whole.
        """
        ingest, ref = batch.ingest, batch.file
        try:
            chunks = self._chunks(ingest.root, ref)
        except (OSError, DocumentError) as err:
            raise application_error(BAD_DOCUMENT, f"{ref.source}: {_reason(err)}") from None
        if not chunks:
            raise application_error(BAD_DOCUMENT, f"{ref.source}: no text to index")
        self.ensure_collection(ingest.collection, create=True)
        part = chunks[batch.start : batch.start + batch.limit]
        vectors = self.embedder.embed([_embedded_text(c.heading, c.text) for c in part])
        activity.heartbeat(f"{ref.source}: embedded {batch.start + len(part)}/{len(chunks)}")
        points = [
            chunk_point(
                _point_id(ingest.root, ref.source, ref.sha256, chunk.position),
                vector,
                {
                    "root": ingest.root,
                    "source": ref.source,
                    "heading": chunk.heading,
                    "position": chunk.position,
                    "sha256": ref.sha256,
                    "tags": ingest.tags,
                    "ingested_at": batch.ingested_at.isoformat(),
                    "text": chunk.text,
                },
            )
            for chunk, vector in zip(part, vectors, strict=True)
        ]
        total = len(chunks)
        last = batch.start + len(part) >= total
        if batch.start == 0 and last:
            # The whole file in one batch: the store's lock makes this one write atomic for
            # searches in this process, so it needs no staging.
            self.store.run(lambda q: self._replace(q, ingest, ref, points))
        else:
            staging = staging_of(ingest.collection)
            self.store.run(lambda q: q.upsert(staging, points=points, wait=True))
            if last:
                every = [_point_id(ingest.root, ref.source, ref.sha256, i) for i in range(total)]
                self.store.run(lambda q: self._publish(q, ingest, ref, every))
        activity.heartbeat(f"{ref.source}: stored {batch.start + len(part)}/{total}")
        return BatchResult(stored=len(points), total_chunks=total, published=last)

    def _replace(
        self,
        q: QdrantBase,
        ingest: IngestRequest,
        ref: FileRef,
        points: list[models.PointStruct],
    ) -> None:
        """Write a file's new version, then drop its older ones."""
        q.upsert(ingest.collection, points=points, wait=True)
        self._drop_older(q, ingest, ref)

    def _drop_older(self, q: QdrantBase, ingest: IngestRequest, ref: FileRef) -> None:
        """Delete the file's chunks of other versions (a new file has none to look for)."""
        from qdrant_client import models

        if ref.status != "new":
            this = models.FieldCondition(key="sha256", match=models.MatchValue(value=ref.sha256))
            q.delete(
                ingest.collection,
                points_selector=models.Filter(
                    must=_file_filter(ingest.root, ref.source), must_not=[this]
                ),
                wait=True,
            )

    def _publish(self, q: QdrantBase, ingest: IngestRequest, ref: FileRef, ids: list[str]) -> None:
        """Move a file's staged chunks (by their known ids) into the collection.

        Safe to repeat: chunks an earlier attempt moved are no longer staged, and the
        ones it had not moved yet are.
        """
        from qdrant_client import models

        staging = staging_of(ingest.collection)
        for start in range(0, len(ids), 256):
            staged = q.retrieve(
                staging, ids=ids[start : start + 256], with_payload=True, with_vectors=True
            )
            if staged:
                moved = [
                    models.PointStruct(id=p.id, vector=p.vector or {}, payload=p.payload)
                    for p in staged
                ]
                q.upsert(ingest.collection, points=moved, wait=True)
                q.delete(
                    staging,
                    points_selector=models.PointIdsList(points=[p.id for p in staged]),
                    wait=True,
                )
        # Once, after the whole new version is in (and again on a retry, harmlessly).
        self._drop_older(q, ingest, ref)

    @activity.defn(name="discard_document")
    def discard_document(self, version: FileVersion) -> int:
        """Remove a version's staged chunks (its ingest failed); the published one stays."""
        from qdrant_client import models

        ingest, ref = version.ingest, version.file
        selector = models.Filter(
            must=[
                *_file_filter(ingest.root, ref.source),
                models.FieldCondition(key="sha256", match=models.MatchValue(value=ref.sha256)),
            ]
        )
        staging = staging_of(ingest.collection)

        def discard(q: QdrantBase) -> int:
            if not q.collection_exists(staging):
                return 0
            found = q.count(staging, count_filter=selector, exact=True).count
            q.delete(staging, points_selector=selector, wait=True)
            return found

        return self.store.run(discard)

    @activity.defn(name="prune_documents")
    def prune_documents(self, ingest: IngestRequest) -> PruneResult:
        """Delete the chunks of files that are no longer in the folder."""
        from qdrant_client import models

        root = Path(ingest.root)
        present = {_source(root, path) for path in _documents(root)} if root.exists() else set()
        stored = self._stored_versions(ingest)
        gone = sorted(source for source in stored if source not in present)
        removed = 0
        for source in gone:
            selector = models.Filter(must=_file_filter(ingest.root, source))

            def drop(q: QdrantBase, selector: models.Filter = selector) -> int:
                found = q.count(ingest.collection, count_filter=selector, exact=True).count
                q.delete(ingest.collection, points_selector=selector, wait=True)
                q.delete(staging_of(ingest.collection), points_selector=selector, wait=True)
                return found

            removed += self.store.run(drop)
        return PruneResult(removed_files=gone, removed_chunks=removed)

    def _chunks(self, root: str, ref: FileRef) -> list[Chunk]:
        key = (root, ref.source, ref.sha256)
        if self._chunked is not None and self._chunked[0] == key:
            return self._chunked[1]
        path = _inside(Path(root), ref.source)
        if sha256_file(path) != ref.sha256:
            raise DocumentError("the file changed while it was being ingested; ingest again")
        chunks = chunk_sections(
            read_sections(path, self.max_file_bytes), self.chunk_tokens, estimate_tokens
        )
        self._chunked = (key, chunks)
        return chunks

    # --- search ----------------------------------------------------------------------

    @activity.defn(name="retrieve")
    def retrieve(self, request: RetrieveRequest) -> RetrieveResult:
        """Search one collection: dense similarity, fused with keyword matches when hybrid.

        With `hybrid`, results are ranked by reciprocal rank fusion and `score` is the
        fused score; `score_threshold` always applies to the dense similarity.
        """
        from qdrant_client import models

        self.ensure_collection(request.collection, create=False)
        vector = self.embedder.embed([request.query])[0]
        conditions: list[Any] = []
        if request.sources:
            conditions.append(
                models.FieldCondition(key="source", match=models.MatchAny(any=request.sources))
            )
        if request.tags:
            conditions.append(
                models.FieldCondition(key="tags", match=models.MatchAny(any=request.tags))
            )
        where = models.Filter(must=conditions) if conditions else None
        ids, weights = keyword_vector(request.query)

        def search(q: QdrantBase) -> list[models.ScoredPoint]:
            if not request.hybrid or not ids:
                return q.query_points(
                    request.collection,
                    query=vector,
                    using=DENSE,
                    query_filter=where,
                    limit=request.top_k,
                    score_threshold=request.score_threshold,
                    with_payload=True,
                ).points
            wide = request.top_k * 4
            return q.query_points(
                request.collection,
                prefetch=[
                    models.Prefetch(
                        query=vector,
                        using=DENSE,
                        filter=where,
                        limit=wide,
                        score_threshold=request.score_threshold,
                    ),
                    models.Prefetch(
                        query=models.SparseVector(indices=ids, values=weights),
                        using=SPARSE,
                        filter=where,
                        limit=wide,
                    ),
                ],
                query=models.FusionQuery(fusion=models.Fusion.RRF),
                limit=request.top_k,
                with_payload=True,
            ).points

        found = self.store.run(search)
        return RetrieveResult(
            chunks=[_retrieved(request.collection, point) for point in found],
            embedder=self.embedder.name,
        )

    @activity.defn(name="search_docs")
    async def search_docs(self, invocation: ToolInvocation) -> ToolResult:
        """The search_docs tool: passages as quoted data, with their citations.

        Async like every tool activity; the blocking search runs in a thread.
        """
        return await asyncio.to_thread(self._search_docs, invocation)

    def _search_docs(self, invocation: ToolInvocation) -> ToolResult:
        try:
            args = SearchDocsArgs.model_validate(invocation.call.arguments)
        except ValidationError as err:
            raise application_error(
                BAD_INPUT, f"search_docs: {problems(err, 'arguments')}"
            ) from None
        found = self.retrieve(
            RetrieveRequest(collection=args.collection, query=args.query, top_k=args.top_k)
        )
        return ToolResult(
            tool="search_docs",
            ok=True,
            output=f"{DATA_NOT_INSTRUCTIONS}\n{quote_documents(found.chunks)}",
            citations=[chunk.citation for chunk in found.chunks],
        )

    # --- the collection ----------------------------------------------------------------

    def ensure_collection(self, name: str, *, create: bool) -> None:
        """Check the collection was built with this embedder (or create it); refuse if not."""
        exists = self.store.run(lambda q: q.collection_exists(name))
        if not exists and not create:
            raise application_error(
                NO_COLLECTION,
                f"no collection {name!r} in {self.store.where}: ingest documents "
                f"first (steward ingest PATH --collection {name})",
            )
        embedder = self.embedder  # loaded only once there is something to embed

        def check(q: QdrantBase) -> None:
            if not q.collection_exists(name):
                _create(q, name, embedder)
            if create and not q.collection_exists(staging_of(name)):
                _create(q, staging_of(name), embedder)
            info = q.get_collection(name)
            recorded = (info.config.metadata or {}).get("embedder")
            vectors = info.config.params.vectors
            size = vectors[DENSE].size if isinstance(vectors, dict) and DENSE in vectors else None
            if recorded != embedder.name or size != embedder.dimension:
                raise application_error(
                    EMBEDDER_MISMATCH,
                    f"collection {name!r} was built with {recorded or 'an unknown model'} "
                    f"({size or '?'} dimensions); this worker embeds with {embedder.name} "
                    f"({embedder.dimension} dimensions). Vectors of two models cannot be "
                    "compared: ingest into a new collection, or set retrieval.embedding back",
                )

        self.store.run(check)

    def _stored_versions(self, ingest: IngestRequest) -> dict[str, set[str]]:
        """The content hashes published for each file under this ingest's folder."""
        from qdrant_client import models

        under = models.Filter(
            must=[models.FieldCondition(key="root", match=models.MatchValue(value=ingest.root))]
        )

        def versions(q: QdrantBase) -> dict[str, set[str]]:
            found: dict[str, set[str]] = {}
            if not q.collection_exists(ingest.collection):
                return found
            for batch in _scroll(q, ingest.collection, under, vectors=False):
                for point in batch:
                    payload = point.payload or {}
                    found.setdefault(str(payload["source"]), set()).add(str(payload["sha256"]))
            return found

        return self.store.run(versions)


def chunk_point(
    point_id: str | int, dense: list[float], payload: dict[str, Any]
) -> models.PointStruct:
    """A stored chunk: its dense vector, the keyword vector of its heading and text, and
    its payload (which holds at least `heading` and `text`).
    """
    from qdrant_client import models

    ids, weights = keyword_vector(f"{payload['heading']}\n{payload['text']}")
    return models.PointStruct(
        id=point_id,
        vector={DENSE: dense, SPARSE: models.SparseVector(indices=ids, values=weights)},
        payload=payload,
    )


def staging_of(collection: str) -> str:
    """The twin collection where a file's new chunks wait until the whole file is in.

    Collection names are lower case, so this name can never be one a user declares.
    """
    return f"{collection}.STAGING"


def _create(q: QdrantBase, name: str, embedder: Embedder) -> None:
    from qdrant_client import models

    q.create_collection(
        name,
        vectors_config={
            DENSE: models.VectorParams(size=embedder.dimension, distance=models.Distance.COSINE)
        },
        sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
        metadata={"embedder": embedder.name, "dimension": embedder.dimension},
    )


def _scroll(
    q: QdrantBase, collection: str, where: models.Filter, *, vectors: bool
) -> Iterator[list[models.Record]]:
    """Every point matching `where`, a page at a time."""
    offset: Any = None
    while True:
        points, offset = q.scroll(
            collection,
            scroll_filter=where,
            limit=256 if vectors else 1000,
            offset=offset,
            with_payload=True if vectors else ["source", "sha256"],
            with_vectors=vectors,
        )
        if points:
            yield points
        if offset is None:
            return


def _documents(root: Path) -> Iterator[Path]:
    """The supported documents under `root` (or `root` itself), in path order.

    Hidden files and folders (a leading dot) are skipped, and so are symbolic links that
    lead out of the folder.
    """
    if root.is_file():
        yield root
        return
    base = root.resolve()
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() not in SUPPORTED or not path.is_file():
            continue
        if not path.resolve().is_relative_to(base):
            continue
        yield path


def _source(root: Path, path: Path) -> str:
    return path.name if root.is_file() else path.relative_to(root).as_posix()


def _inside(root: Path, source: str) -> Path:
    path = root if root.is_file() else root / source
    if not path.resolve().is_relative_to(root.resolve()):
        raise application_error(BAD_INPUT, f"{source}: outside the ingested folder")
    return path


def _reason(err: Exception) -> str:
    if isinstance(err, PermissionError):
        return "permission denied (the worker cannot read it)"
    if isinstance(err, OSError):
        return f"cannot read it ({err.strerror or err})"
    return str(err)


def _embedded_text(heading: str, text: str) -> str:
    # The heading trail is part of what a chunk is about ("Refunds > Timing").
    return f"{heading}\n{text}" if heading else text


def _point_id(root: str, source: str, digest: str, position: int) -> str:
    return str(uuid.uuid5(_POINTS, f"{root}\x00{source}\x00{digest}\x00{position}"))


def _file_filter(root: str, source: str) -> list[Any]:
    from qdrant_client import models

    return [
        models.FieldCondition(key="root", match=models.MatchValue(value=root)),
        models.FieldCondition(key="source", match=models.MatchValue(value=source)),
    ]


def _retrieved(collection: str, point: models.ScoredPoint) -> RetrievedChunk:
    payload = point.payload or {}
    return RetrievedChunk(
        text=str(payload.get("text", "")),
        citation=Citation(
            collection=collection,
            source=str(payload.get("source", "?")),
            heading=str(payload.get("heading", "")),
            chunk=int(payload.get("position", 0)),
            score=round(float(point.score), 4),
        ),
    )
