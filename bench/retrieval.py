"""Retrieval's figures for `make bench` (also `python -m bench.retrieval` on its own).

- ingest throughput: chunks per second through the real IngestWorkflow (scan, embed in
  batches, publish) into the embedded store, with the offline embedding model;
- query latency, p50 and p95, of the `retrieve` activity's code (embed the query, then a
  dense or a hybrid search) at 1k, 10k and 50k chunks in the embedded store on disk, with
  its HNSW index built;
- at 50k chunks, the search alone three ways on the same points and queries: the
  embedded store's HNSW index and the same store comparing the query with every point
  (exact search, the reference for recall@10), interleaved, then qdrant-client's local
  mode (the embedded store before Qdrant Edge, which also compares with every point, in
  numpy);
- the same search as a Temporal activity started by a workflow, against calling it
  directly, side by side in one run.

The chunks are real text through the real embedding model: each is 60 words, 40 from
one of 1,000 topics (30 words each, drawn from the model's own vocabulary) and 20 from
anywhere, so that, like a real corpus, chunks gather around topics without repeating
one another. Queries are six words, five from one topic.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import statistics
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from qdrant_client import QdrantClient, models
from qdrant_client.client_base import QdrantBase
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.edge import EdgeQdrant
from activities.embeddings import WordLlamaEmbedder
from activities.retrieval import (
    DENSE,
    RetrievalActivities,
    VectorStore,
    _create,
    chunk_point,
)
from bench import steward_plugin
from steward import devserver
from steward import search_attributes as sa
from steward.config import load_config
from steward.plugin import SANDBOX
from steward.retrieval import IngestRequest, RetrieveRequest, RetrieveResult
from tests.support.retrieval import ingest
from tests.support.stack import activities_for_tests, running_workers

REPO = Path(__file__).resolve().parent.parent
SIZES = (1_000, 10_000, 50_000)
QUERIES = {1_000: 100, 10_000: 100, 50_000: 100}
SIDE_BY_SIDE = 200
"""Queries of the three-way comparison at the largest size."""
TOPICS = 1_000
K = 10


@workflow.defn(name="BenchRetrieve", sandboxed=False)
class BenchRetrieve:
    """One retrieve activity, for timing it through Temporal."""

    @workflow.run
    async def run(self, request: RetrieveRequest) -> RetrieveResult:
        """Search once."""
        return await workflow.execute_activity_method(
            RetrievalActivities.retrieve, request, start_to_close_timeout=timedelta(seconds=30)
        )


class Corpus:
    """Topic-shaped text in the embedding model's own words (see the module docstring)."""

    def __init__(self, embedder: WordLlamaEmbedder, seed: int = 0) -> None:
        # The tokenizer's whole lower-case words (it also holds pieces and other scripts).
        vocabulary = embedder._model.tokenizer.get_vocab()
        self.words = sorted(
            word[1:]
            for word in vocabulary
            if word.startswith("\u2581") and re.fullmatch(r"[a-z]{4,12}", word[1:])
        )
        self.rng = random.Random(seed)
        self.topics = [self.rng.sample(self.words, 30) for _ in range(TOPICS)]

    def text(self, from_topic: int, anywhere: int) -> tuple[int, str]:
        """(topic, text) of so many words from one topic and so many from anywhere."""
        topic = self.rng.randrange(TOPICS)
        words = self.rng.choices(self.topics[topic], k=from_topic)
        words += self.rng.choices(self.words, k=anywhere)
        self.rng.shuffle(words)
        return topic, " ".join(words)

    def chunk(self) -> tuple[int, str]:
        """A chunk's topic and text."""
        return self.text(40, 20)

    def query(self) -> str:
        """A short question's words."""
        return self.text(5, 1)[1]


def fill(
    retrieval: RetrievalActivities, corpus: Corpus, collection: str, count: int
) -> list[models.PointStruct]:
    """`count` chunks, embedded for real, upserted in batches; returns the points."""
    retrieval.ensure_collection(collection, create=True)
    embedder = retrieval.embedder
    stored: list[models.PointStruct] = []
    for start in range(0, count, 1_000):
        chunks = [corpus.chunk() for _ in range(min(1_000, count - start))]
        vectors = embedder.embed([text for _, text in chunks])
        batch = [
            chunk_point(
                start + offset,
                vector,
                {
                    "source": f"topic-{topic}.md",
                    "heading": f"topic {topic}",
                    "position": start + offset,
                    "text": text,
                    "tags": [],
                },
            )
            for offset, ((topic, text), vector) in enumerate(zip(chunks, vectors, strict=True))
        ]

        def store(q: QdrantBase, batch: list[models.PointStruct] = batch) -> None:
            q.upsert(collection, points=batch, wait=True)

        retrieval.store.run(store)
        stored.extend(batch)
    return stored


def embedded(retrieval: RetrievalActivities) -> EdgeQdrant:
    """The bench's store: the embedded default, whatever the environment says."""
    store = retrieval.store.run(lambda q: q)
    assert isinstance(store, EdgeQdrant), store
    return store


def latencies(
    retrieval: RetrievalActivities, corpus: Corpus, collection: str, size: int, *, hybrid: bool
) -> list[float]:
    taken = []
    for _ in range(QUERIES[size]):
        request = RetrieveRequest(collection=collection, query=corpus.query(), hybrid=hybrid)
        started = time.perf_counter()
        retrieval.retrieve(request)
        taken.append((time.perf_counter() - started) * 1000)
    return taken


def p50_p95(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]


def searched(
    search: Callable[[list[float]], list[models.ScoredPoint]], vectors: list[list[float]]
) -> tuple[list[float], list[list[models.ExtendedPointId]]]:
    """Each query's time (ms) and the ids it found, in order."""
    times, found = [], []
    for vector in vectors:
        started = time.perf_counter()
        points = search(vector)
        times.append((time.perf_counter() - started) * 1000)
        found.append([point.id for point in points])
    return times, found


def recall(
    found: list[list[models.ExtendedPointId]], exact: list[list[models.ExtendedPointId]]
) -> float:
    """Mean share of the exact top-k that a search found."""
    return statistics.mean(
        len(set(got) & set(wanted)) / len(wanted) for got, wanted in zip(found, exact, strict=True)
    )


def side_by_side(
    retrieval: RetrievalActivities,
    corpus: Corpus,
    collection: str,
    points: list[models.PointStruct],
) -> list[str]:
    """The 50k search three ways on the same queries: the store's two interleaved query by
    query, then the local mode's on its own (numpy's threads keep spinning after a call,
    which would slow whatever ran next on a small machine).
    """
    vectors = retrieval.embedder.embed([corpus.query() for _ in range(SIDE_BY_SIDE)])
    store = embedded(retrieval)
    local = QdrantClient(location=":memory:")  # the embedded store before Qdrant Edge
    _create(local, collection, retrieval.embedder)
    with warnings.catch_warnings():  # it advises against itself past 20,000 points
        warnings.filterwarnings("ignore", "Local mode is not recommended")
        for start in range(0, len(points), 1_000):
            local.upsert(collection, points=points[start : start + 1_000], wait=True)

    def nearest(
        client: QdrantBase, exact: bool = False
    ) -> Callable[[list[float]], list[models.ScoredPoint]]:
        params = models.SearchParams(exact=True) if exact else None
        return lambda vector: (
            client.query_points(
                collection, query=vector, using=DENSE, limit=K, search_params=params
            ).points
        )

    ways = {
        "hnsw": nearest(store),
        "exact": nearest(store, exact=True),
        "local": nearest(local),
    }
    times: dict[str, list[float]] = {way: [] for way in ways}
    found: dict[str, list[list[models.ExtendedPointId]]] = {way: [] for way in ways}
    for vector in vectors:  # interleaved, so drift in the machine hits both alike
        for way in ("hnsw", "exact"):
            took, ids = searched(ways[way], [vector])
            times[way] += took
            found[way] += ids
    times["local"], found["local"] = searched(ways["local"], vectors)
    local.close()
    info = store.get_collection(collection)
    lines = [
        f"  search alone at {len(points):,} chunks ({SIDE_BY_SIDE} queries, dense top-{K}, "
        f"payload returned; {info.segments_count} segments, "
        f"{info.indexed_vectors_count:,} dense and sparse vectors indexed):",
    ]
    labels = {
        "hnsw": "embedded, HNSW index (Qdrant Edge)",
        "exact": "embedded, exact (Edge compares every point)",
        "local": "qdrant-client local mode (the old default)",
    }
    for way, label in labels.items():
        p50, p95 = p50_p95(times[way])
        lines.append(
            f"    {label:<45} p50 {p50:>6.2f}ms  p95 {p95:>6.2f}ms  "
            f"recall@{K} {recall(found[way], found['exact']):.3f} vs exact"
        )
    return lines


async def ingest_rate(env: WorkflowEnvironment, scratch: Path, corpus: Corpus) -> tuple[int, float]:
    """Chunks per second ingesting a generated corpus through the IngestWorkflow."""
    folder = scratch / "corpus"
    folder.mkdir()
    for number in range(100):
        sections = []
        for part in range(20):
            topic, text = corpus.chunk()
            sections.append(f"## Topic {topic}, part {part}\n\n{text}\n")
        (folder / f"doc-{number:03}.md").write_text("".join(sections))
    config = load_config(REPO / "examples" / "steward.yaml")
    retrieval = RetrievalActivities(VectorStore(path=scratch / "ingest"), WordLlamaEmbedder)
    queue = f"bench-ingest-{uuid.uuid4().hex[:6]}"
    activities = activities_for_tests(config, retrieval=retrieval)
    async with running_workers(env.client, config, queue, activities):
        started = time.perf_counter()
        done = await ingest(env.client, IngestRequest(root=str(folder), collection="bench"), queue)
        seconds = time.perf_counter() - started
    retrieval.store.close()
    return done.chunks, done.chunks / seconds


async def through_temporal(
    env: WorkflowEnvironment, retrieval: RetrievalActivities, collection: str
) -> tuple[float, float]:
    """Median ms of the same search called directly and as an activity, interleaved."""
    queue = f"bench-retrieve-{uuid.uuid4().hex[:6]}"
    request = RetrieveRequest(collection=collection, query="refund parcel tracking")
    direct, durable = [], []
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[BenchRetrieve],
        activities=[retrieval.retrieve],
        activity_executor=ThreadPoolExecutor(2),
        workflow_runner=SANDBOX,
    ):
        for round_ in range(60):
            started = time.perf_counter()
            await asyncio.to_thread(retrieval.retrieve, request)
            direct.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await env.client.execute_workflow(
                BenchRetrieve.run, request, id=f"bench-retrieve-{round_}-{queue}", task_queue=queue
            )
            durable.append((time.perf_counter() - started) * 1000)
    return statistics.median(direct[5:]), statistics.median(durable[5:])


async def measure() -> list[str]:
    """Run every retrieval measurement; return the lines to print."""
    scratch = Path(tempfile.mkdtemp(prefix="steward-bench-retrieval-"))
    env = await WorkflowEnvironment.start_local(
        plugins=[steward_plugin()],
        dev_server_existing_path=str(devserver.temporal_binary()),
        search_attributes=sa.ALL,
        dev_server_extra_args=[*devserver.tuning_args(), "--db-filename", str(scratch / "t.db")],
        dev_server_log_level="error",
    )
    lines = [
        "",
        "retrieval (embedded store: Qdrant Edge on disk; wordllama l2_supercat 256 dims, "
        f"{os.cpu_count()} cores):",
    ]
    embedder = WordLlamaEmbedder()
    corpus = Corpus(embedder)
    retrieval = RetrievalActivities(VectorStore(path=scratch / "store"), lambda: embedder)
    try:
        chunks, rate = await ingest_rate(env, scratch, corpus)
        lines.append(f"  ingest through IngestWorkflow: {chunks} chunks at {rate:,.0f} chunks/s")
        lines.append(
            f"  {'chunks':>8} {'fill':>7} {'index':>7} {'dense p50':>10} {'p95':>7} "
            f"{'hybrid p50':>11} {'p95':>7}   (retrieve: embed the query, then search)"
        )
        largest: list[models.PointStruct] = []
        for size in SIZES:
            collection = f"bench-{size}"
            started = time.perf_counter()
            points = fill(retrieval, corpus, collection, size)
            filled = time.perf_counter() - started
            started = time.perf_counter()
            embedded(retrieval).build_index(collection)  # what the store does once quiet
            indexed = time.perf_counter() - started
            hybrid = p50_p95(latencies(retrieval, corpus, collection, size, hybrid=True))
            dense = p50_p95(latencies(retrieval, corpus, collection, size, hybrid=False))
            lines.append(
                f"  {size:>8,} {filled:>6.1f}s {indexed:>6.1f}s {dense[0]:>8.2f}ms "
                f"{dense[1]:>5.2f}ms {hybrid[0]:>9.2f}ms {hybrid[1]:>5.2f}ms"
            )
            largest = points
        lines += side_by_side(retrieval, corpus, f"bench-{SIZES[-1]}", largest)
        lines.append(
            "  (fill: embed and store; index: the HNSW build, in a child process, which the "
            "store starts by itself once writes pause)"
        )
        direct, durable = await through_temporal(env, retrieval, f"bench-{SIZES[0]}")
        lines.append(
            f"  retrieve at {SIZES[0]:,} chunks: direct {direct:.1f}ms, as an activity in a "
            f"workflow {durable:.1f}ms (+{durable - direct:.1f}ms for Temporal)"
        )
    finally:
        retrieval.store.close()
        await env.shutdown()
        # Half a gigabyte of stores, of no use afterwards (and not worth losing the figures).
        shutil.rmtree(scratch, ignore_errors=True)
    return lines


if __name__ == "__main__":
    for line in asyncio.run(measure()):
        print(line)
