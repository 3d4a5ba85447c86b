"""Retrieval's figures for `make bench` (also `python -m bench.retrieval` on its own).

- ingest throughput: chunks per second through the real IngestWorkflow (scan, embed in
  batches, publish) into an embedded store, with the offline embedding model;
- query latency, p50 and p95, of the `retrieve` activity's code (embed the query, hybrid
  search) at 1k, 10k and 50k chunks in the embedded store on disk;
- the same search as a Temporal activity started by a workflow, against calling it
  directly, side by side in one run.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from qdrant_client import models
from qdrant_client.client_base import QdrantBase
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.embeddings import WordLlamaEmbedder
from activities.retrieval import RetrievalActivities, VectorStore, chunk_point
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
QUERIES = {1_000: 100, 10_000: 100, 50_000: 40}
TOPICS = (
    "refund",
    "parcel",
    "invoice",
    "password",
    "warranty",
    "subscription",
    "gift card",
    "escalation",
    "delivery",
    "payment",
)
WORDS = (
    "customer order team policy days business within return account support reply send "
    "item warehouse tracking charge bank statement label address carrier replacement"
).split()


@workflow.defn(name="BenchRetrieve", sandboxed=False)
class BenchRetrieve:
    """One retrieve activity, for timing it through Temporal."""

    @workflow.run
    async def run(self, request: RetrieveRequest) -> RetrieveResult:
        """Search once."""
        return await workflow.execute_activity_method(
            RetrievalActivities.retrieve, request, start_to_close_timeout=timedelta(seconds=30)
        )


def synthetic_chunk(rng: random.Random) -> tuple[str, str]:
    topic = rng.choice(TOPICS)
    words = " ".join(rng.choice(WORDS) for _ in range(60))
    return topic, f"About {topic}: {words}."


def fill(retrieval: RetrievalActivities, collection: str, count: int) -> None:
    """`count` synthetic chunks, embedded for real, upserted in batches."""
    retrieval.ensure_collection(collection, create=True)
    rng = random.Random(count)
    embedder = retrieval.embedder
    for start in range(0, count, 1_000):
        texts = [synthetic_chunk(rng) for _ in range(min(1_000, count - start))]
        vectors = embedder.embed([text for _, text in texts])
        points = [
            chunk_point(
                start + offset,
                vector,
                {
                    "source": f"{topic}.md",
                    "heading": topic,
                    "position": start + offset,
                    "text": text,
                    "tags": [],
                },
            )
            for offset, ((topic, text), vector) in enumerate(zip(texts, vectors, strict=True))
        ]
        batch = points

        def store(q: QdrantBase, batch: list[models.PointStruct] = batch) -> None:
            q.upsert(collection, points=batch, wait=True)

        retrieval.store.run(store)


def latencies(
    retrieval: RetrievalActivities, collection: str, size: int, *, hybrid: bool
) -> list[float]:
    rng = random.Random(7)
    taken = []
    for _ in range(QUERIES[size]):
        query = f"{rng.choice(TOPICS)} {rng.choice(WORDS)} {rng.choice(WORDS)}"
        started = time.perf_counter()
        retrieval.retrieve(RetrieveRequest(collection=collection, query=query, hybrid=hybrid))
        taken.append((time.perf_counter() - started) * 1000)
    return taken


def p50_p95(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]


async def ingest_rate(env: WorkflowEnvironment, scratch: Path) -> tuple[int, float]:
    """Chunks per second ingesting a generated corpus through the IngestWorkflow."""
    corpus = scratch / "corpus"
    corpus.mkdir()
    rng = random.Random(1)
    for number in range(100):
        sections = []
        for part in range(20):
            topic, text = synthetic_chunk(rng)
            sections.append(f"## {topic.title()} {part}\n\n{text}\n")
        (corpus / f"doc-{number:03}.md").write_text("".join(sections))
    config = load_config(REPO / "examples" / "steward.yaml")
    retrieval = RetrievalActivities(VectorStore(path=scratch / "ingest"), WordLlamaEmbedder)
    queue = f"bench-ingest-{uuid.uuid4().hex[:6]}"
    activities = activities_for_tests(config, retrieval=retrieval)
    async with running_workers(env.client, config, queue, activities):
        started = time.perf_counter()
        done = await ingest(env.client, IngestRequest(root=str(corpus), collection="bench"), queue)
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
    from concurrent.futures import ThreadPoolExecutor

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
    lines = ["", "retrieval (embedded Qdrant, wordllama l2_supercat 256 dims, 200-token chunks):"]
    try:
        chunks, rate = await ingest_rate(env, scratch)
        lines.append(f"  ingest through IngestWorkflow: {chunks} chunks at {rate:,.0f} chunks/s")
        retrieval = RetrievalActivities(VectorStore(path=scratch / "store"), WordLlamaEmbedder)
        lines.append(f"  {'chunks':>8} {'dense p50':>10} {'p95':>7} {'hybrid p50':>11} {'p95':>7}")
        for size in SIZES:
            collection = f"bench-{size}"
            fill(retrieval, collection, size)
            hybrid = p50_p95(latencies(retrieval, collection, size, hybrid=True))
            dense = p50_p95(latencies(retrieval, collection, size, hybrid=False))
            lines.append(
                f"  {size:>8,} {dense[0]:>8.1f}ms {dense[1]:>5.1f}ms "
                f"{hybrid[0]:>9.1f}ms {hybrid[1]:>5.1f}ms"
            )
        direct, durable = await through_temporal(env, retrieval, f"bench-{SIZES[0]}")
        lines.append(
            f"  retrieve at {SIZES[0]:,} chunks: direct {direct:.1f}ms, as an activity in a "
            f"workflow {durable:.1f}ms (+{durable - direct:.1f}ms for Temporal)"
        )
        retrieval.store.close()
    finally:
        await env.shutdown()
    return lines


if __name__ == "__main__":
    for line in asyncio.run(measure()):
        print(line)
