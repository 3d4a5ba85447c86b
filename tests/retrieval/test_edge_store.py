"""The embedded store on Qdrant Edge: its index finds what exact search finds, and it keeps
points, deletes, filters and collections apart across reopening and index builds.

Vectors are random (numpy, fixed seeds) so exact answers can be computed independently.
The stores here index small segments (`Tuning`), so a few thousand points are enough to
make a search walk an HNSW graph, as 50,000 chunks do with the defaults; `make bench`
measures the defaults at that size.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.edge import EdgeQdrant, Unsupported
from activities.edge import index as edge_index
from activities.edge.collection import Tuning
from activities.retrieval import (
    DENSE,
    FILTERED,
    RetrievalActivities,
    VectorStore,
    _create,
    chunk_point,
)
from steward import errors
from steward.retrieval import RetrieveRequest
from tests.retrieval.conftest import retrieval_at
from tests.support.retrieval import HashEmbedder

DIMENSION = 64
SMALL = Tuning(index_kb=50, full_scan_kb=1)
"""Index any segment over 200 points of 64 dimensions, and always walk the graph."""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EdgeQdrant]:
    opened = EdgeQdrant(tmp_path / "store", keyword_fields=FILTERED, tuning=SMALL)
    yield opened
    opened.close()


def vectors(count: int, seed: int) -> np.ndarray:
    """`count` random unit vectors."""
    found = np.random.default_rng(seed).standard_normal((count, DIMENSION))
    unit: np.ndarray = found / np.linalg.norm(found, axis=1, keepdims=True)
    return unit


def create(store: EdgeQdrant, name: str = "docs") -> None:
    store.create_collection(
        name,
        vectors_config={
            DENSE: models.VectorParams(size=DIMENSION, distance=models.Distance.COSINE)
        },
        metadata={"embedder": "test/random"},
    )


def fill(store: EdgeQdrant, data: np.ndarray, name: str = "docs", first: int = 0) -> None:
    store.upsert(
        name,
        points=[
            models.PointStruct(
                id=first + i,
                vector={DENSE: row.tolist()},
                payload={
                    "root": "/docs",
                    "source": f"file-{(first + i) % 10}.md",
                    "sha256": "v1",
                    "tags": ["public"] if (first + i) % 2 else ["internal"],
                },
            )
            for i, row in enumerate(data)
        ],
    )


def nearest(
    store: EdgeQdrant,
    query: np.ndarray,
    name: str = "docs",
    params: models.SearchParams | None = None,
) -> list[int]:
    found = store.query_points(
        name, query=query.tolist(), using=DENSE, limit=10, search_params=params
    )
    return [int(str(point.id)) for point in found.points]  # the ids here are whole numbers


def recall(found: list[list[int]], exact: list[list[int]]) -> float:
    return float(
        np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, exact, strict=True)])
    )


def test_the_index_finds_what_exact_search_finds(store: EdgeQdrant) -> None:
    data, queries = vectors(2_000, seed=1), vectors(50, seed=2)
    create(store)
    fill(store, data)
    store.build_index("docs")
    info = store.get_collection("docs")
    assert info.indexed_vectors_count == 2_000 and info.status == models.CollectionStatus.GREEN

    truth = [[int(i) for i in np.argsort(-(data @ query))[:10]] for query in queries]  # numpy
    exact = [nearest(store, q, params=models.SearchParams(exact=True)) for q in queries]
    assert recall(exact, truth) == 1.0
    indexed = [nearest(store, q) for q in queries]
    assert recall(indexed, exact) >= 0.95
    # and the graph is what answered: a beam too narrow to see everything misses some
    narrow = [nearest(store, q, params=models.SearchParams(hnsw_ef=10)) for q in queries]
    assert recall(narrow, exact) < 0.95


def test_a_store_reopens_with_its_collections_points_and_index(tmp_path: Path) -> None:
    data, query = vectors(1_000, seed=3), vectors(1, seed=4)[0]
    first = EdgeQdrant(tmp_path / "store", keyword_fields=FILTERED, tuning=SMALL)
    create(first)
    fill(first, data)
    first.build_index("docs")
    before = nearest(first, query)
    first.close()

    again = EdgeQdrant(tmp_path / "store", keyword_fields=FILTERED, tuning=SMALL)
    try:
        assert again.collection_exists("docs") and not again.collection_exists("other")
        info = again.get_collection("docs")
        assert (info.points_count, info.indexed_vectors_count) == (1_000, 1_000)
        assert info.config.metadata == {"embedder": "test/random"}
        assert nearest(again, query) == before
        record = again.retrieve("docs", ids=[7], with_vectors=True)[0]
        assert record.payload == {
            "root": "/docs",
            "source": "file-7.md",
            "sha256": "v1",
            "tags": ["public"],
        }
        assert isinstance(record.vector, dict)
        assert np.allclose(np.array(record.vector[DENSE]), data[7], atol=1e-6)
    finally:
        again.close()


def test_a_second_open_of_the_same_directory_is_refused(store: EdgeQdrant) -> None:
    from activities.edge import ShardInUse

    with pytest.raises(ShardInUse, match="open in another process"):
        EdgeQdrant(store.path)


def test_deletes_and_a_reingest_replace_exactly_the_points_named(store: EdgeQdrant) -> None:
    create(store)
    fill(store, vectors(500, seed=5))
    store.build_index("docs")
    file_3 = models.Filter(
        must=[
            models.FieldCondition(key="root", match=models.MatchValue(value="/docs")),
            models.FieldCondition(key="source", match=models.MatchValue(value="file-3.md")),
        ]
    )
    assert store.count("docs", count_filter=file_3).count == 50

    # a new version of file-3: its points upserted under new ids, then the old ones dropped
    new = [
        models.PointStruct(
            id=10_000 + i,
            vector={DENSE: row.tolist()},
            payload={"root": "/docs", "source": "file-3.md", "sha256": "v2", "tags": []},
        )
        for i, row in enumerate(vectors(20, seed=6))
    ]
    store.upsert("docs", points=new)
    this = models.FieldCondition(key="sha256", match=models.MatchValue(value="v2"))
    store.delete(
        "docs",
        points_selector=models.Filter(must=file_3.must, must_not=[this]),
    )
    kept, _ = store.scroll("docs", scroll_filter=file_3, limit=1_000)
    assert sorted(point.id for point in kept) == list(range(10_000, 10_020))
    assert store.count("docs").count == 500 - 50 + 20

    store.delete("docs", points_selector=models.PointIdsList(points=[0, 1, 2]))
    assert store.retrieve("docs", ids=[0, 1, 2, 4]) == store.retrieve("docs", ids=[4])
    # re-ingesting the same id replaces the point; it is not stored twice
    store.upsert(
        "docs",
        points=[models.PointStruct(id=4, vector={DENSE: [1.0] * DIMENSION}, payload={"v": 2})],
    )
    assert store.retrieve("docs", ids=[4])[0].payload == {"v": 2}
    assert store.count("docs").count == 500 - 50 + 20 - 3


def test_filters_and_collections_keep_searches_apart(store: EdgeQdrant) -> None:
    create(store, "docs")
    create(store, "other")
    fill(store, vectors(600, seed=7), "docs")
    fill(store, vectors(600, seed=8), "other", first=100_000)
    store.build_index("docs")
    query = vectors(1, seed=9)[0]

    in_docs = nearest(store, query, "docs")
    assert in_docs and all(point < 100_000 for point in in_docs)
    assert all(point >= 100_000 for point in nearest(store, query, "other"))

    two_files = models.Filter(
        must=[
            models.FieldCondition(
                key="source", match=models.MatchAny(any=["file-1.md", "file-2.md"])
            )
        ]
    )
    found = store.query_points(
        "docs", query=query.tolist(), using=DENSE, query_filter=two_files, limit=30
    ).points
    assert len(found) == 30
    assert {point.payload["source"] for point in found} <= {"file-1.md", "file-2.md"}  # type: ignore[index]
    public = models.Filter(
        must=[models.FieldCondition(key="tags", match=models.MatchAny(any=["public"]))],
        must_not=[models.FieldCondition(key="source", match=models.MatchValue(value="file-1.md"))],
    )
    found = store.query_points(
        "docs", query=query.tolist(), using=DENSE, query_filter=public, limit=30
    ).points
    assert len(found) == 30
    assert all(point.payload["tags"] == ["public"] for point in found)  # type: ignore[index]
    assert all(point.payload["source"] != "file-1.md" for point in found)  # type: ignore[index]
    # what a filter cannot say is refused rather than dropped
    with pytest.raises(Unsupported, match="other than match"):
        store.count(
            "docs",
            count_filter=models.Filter(
                must=[models.FieldCondition(key="position", range=models.Range(gte=3))]
            ),
        )


@pytest.fixture
def held_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Index builds wait for a file to appear before they start (returned: that file)."""
    go = tmp_path / "go"
    monkeypatch.setattr(
        edge_index,
        "BUILD",
        f"import pathlib, time\nwhile not pathlib.Path({str(go)!r}).exists(): time.sleep(0.05)\n"
        + edge_index.BUILD,
    )
    return go


def test_writes_made_during_an_index_build_are_kept(store: EdgeQdrant, held_build: Path) -> None:
    create(store)
    fill(store, vectors(1_000, seed=10))
    building = threading.Thread(target=store.build_index, args=("docs",))
    building.start()
    deadline = time.monotonic() + 30
    while store.get_collection("docs").status != models.CollectionStatus.YELLOW:
        assert time.monotonic() < deadline, "the build never started"
        time.sleep(0.05)
    # meanwhile, the live shard takes writes (and serves searches)
    fill(store, vectors(100, seed=11), first=5_000)
    store.delete("docs", points_selector=models.PointIdsList(points=list(range(10))))
    assert store.count("docs").count == 1_090
    held_build.touch()
    building.join(timeout=120)
    assert not building.is_alive()

    info = store.get_collection("docs")
    assert info.status == models.CollectionStatus.GREEN
    assert info.points_count == 1_090 and (info.indexed_vectors_count or 0) >= 1_000
    assert store.retrieve("docs", ids=list(range(10))) == []
    assert len(store.retrieve("docs", ids=list(range(5_000, 5_100)))) == 100
    assert not list((store.path / "edge" / "docs").glob("shard.building*"))


def test_the_store_builds_its_index_once_writes_pause(tmp_path: Path) -> None:
    store = EdgeQdrant(tmp_path / "store", tuning=SMALL, quiet_seconds=0.2)
    try:
        create(store)
        fill(store, vectors(1_000, seed=12))
        assert store.get_collection("docs").status == models.CollectionStatus.GREY  # owed
        deadline = time.monotonic() + 120
        while store.get_collection("docs").status != models.CollectionStatus.GREEN:
            assert time.monotonic() < deadline, "the index was never built"
            time.sleep(0.1)
        assert store.get_collection("docs").indexed_vectors_count == 1_000
    finally:
        store.close()


def test_a_swap_cut_short_leaves_a_whole_shard_to_open(tmp_path: Path) -> None:
    first = EdgeQdrant(tmp_path / "store", tuning=SMALL)
    create(first)
    fill(first, vectors(300, seed=13))
    first.close()
    folder = tmp_path / "store" / "edge" / "docs"
    # stopped after the old shard was retired, before the new one was in place
    (folder / "shard").rename(folder / "shard.retired")
    (folder / "shard.building-0123").mkdir()  # and a build's copy left half-done
    again = EdgeQdrant(tmp_path / "store", tuning=SMALL)
    assert again.count("docs").count == 300
    again.close()
    assert not (folder / "shard.building-0123").exists()
    assert not (folder / "shard.retired").exists()
    # stopped after the new shard was ready, before the old one was retired
    (folder / "shard").rename(folder / "shard.ready")
    again = EdgeQdrant(tmp_path / "store", tuning=SMALL)
    assert again.count("docs").count == 300
    again.close()


def old_store(path: Path) -> None:
    """A store as an earlier Steward wrote it, with qdrant-client's local mode."""
    embedder = HashEmbedder()
    old = QdrantClient(path=str(path))
    _create(old, "handbook", embedder)
    _create(old, "handbook.STAGING", embedder)
    old.upsert(
        "handbook",
        points=[
            chunk_point(
                "6f1d3a52-8c1e-4b7a-9a55-2f4f8f0f2c11",
                embedder.embed(["Refunds take five business days."])[0],
                {
                    "root": "/handbook",
                    "source": "refunds.md",
                    "heading": "Refunds",
                    "position": 0,
                    "sha256": "abc",
                    "tags": [],
                    "text": "Refunds take five business days.",
                },
            )
        ],
    )
    old.close()


def test_a_store_written_by_qdrant_client_local_mode_is_brought_in(tmp_path: Path) -> None:
    path = tmp_path / "qdrant"
    old_store(path)
    retrieval = RetrievalActivities(VectorStore(path=path), HashEmbedder)  # the old model
    found = ActivityEnvironment().run(
        retrieval.retrieve, RetrieveRequest(collection="handbook", query="refunds")
    )
    assert [chunk.text for chunk in found.chunks] == ["Refunds take five business days."]
    assert found.chunks[0].citation.source == "refunds.md"
    store = retrieval.store.run(lambda q: q)
    assert isinstance(store, EdgeQdrant)
    assert store.collection_exists("handbook.STAGING")
    retrieval.store.close()
    assert not (path / "meta.json").exists() and not (path / "collection").exists()

    again = RetrievalActivities(VectorStore(path=path), HashEmbedder)
    assert (
        ActivityEnvironment()
        .run(again.retrieve, RetrieveRequest(collection="handbook", query="refunds"))
        .chunks
    )
    again.store.close()


def test_an_old_store_still_open_in_another_process_says_so(tmp_path: Path) -> None:
    path = tmp_path / "qdrant"
    old_store(path)
    older_worker = QdrantClient(path=str(path))  # holds the old store's lock, as one would
    try:
        retrieval = retrieval_at(path)
        with pytest.raises(ApplicationError, match="open in another process") as locked:
            ActivityEnvironment().run(
                retrieval.retrieve, RetrieveRequest(collection="handbook", query="refunds")
            )
        assert locked.value.type == errors.STORE_LOCKED and not locked.value.non_retryable
        assert (path / "meta.json").exists()  # left as it was, to be brought in later
        retrieval.store.close()
    finally:
        older_worker.close()
