"""Ingest through the real IngestWorkflow: incremental, idempotent, and safe with bad files."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import models
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.embeddings import WordLlamaEmbedder
from activities.retrieval import RetrievalActivities, VectorStore
from steward.config import StewardConfig
from steward.retrieval import BatchResult, DocumentBatch, IngestRequest, RetrieveRequest
from tests.retrieval.conftest import HANDBOOK, HANDBOOK_FILES, retrieval_at
from tests.support.retrieval import HashEmbedder, ingest
from tests.support.stack import activities_for_tests, running_workers


def points(retrieval: RetrievalActivities, collection: str, **match: Any) -> list[dict[str, Any]]:
    """Every stored chunk's payload matching `match` (field -> value)."""
    where = models.Filter(
        must=[
            models.FieldCondition(key=key, match=models.MatchValue(value=value))
            for key, value in match.items()
        ]
    )
    found, _ = retrieval.store.run(
        lambda q: q.scroll(collection, scroll_filter=where, limit=100_000, with_payload=True)
    )
    return [point.payload or {} for point in found]


async def run_ingest(
    client: Client,
    config: StewardConfig,
    queue: str,
    retrieval: RetrievalActivities,
    root: Path,
    collection: str = "docs",
) -> Any:
    async with running_workers(
        client, config, queue, activities_for_tests(config, retrieval=retrieval)
    ):
        return await ingest(client, IngestRequest(root=str(root), collection=collection), queue)


async def test_reingest_skips_unchanged_replaces_edited_and_drops_deleted(
    client: Client, config: StewardConfig, task_queue: str, tmp_path: Path
) -> None:
    folder = tmp_path / "handbook"
    shutil.copytree(HANDBOOK, folder)
    retrieval = retrieval_at(tmp_path / "qdrant")

    first = await run_ingest(client, config, task_queue, retrieval, folder)
    assert (first.files_ingested, first.files_unchanged, first.problems) == (HANDBOOK_FILES, 0, [])
    stored = points(retrieval, "docs")
    assert len(stored) == first.chunks > HANDBOOK_FILES
    assert points(retrieval, "docs.STAGING") == []  # everything was published
    assert {p["source"] for p in stored} == {p.name for p in HANDBOOK.iterdir()}

    again = await run_ingest(client, config, task_queue, retrieval, folder)
    assert (again.files_ingested, again.files_unchanged, again.chunks) == (0, HANDBOOK_FILES, 0)
    assert len(points(retrieval, "docs")) == first.chunks  # nothing duplicated

    old_refunds = points(retrieval, "docs", source="refunds.md")
    shipping = points(retrieval, "docs", source="shipping.md")
    refunds = folder / "refunds.md"
    refunds.write_text(refunds.read_text() + "\n## Store credit\nStore credit never expires.\n")
    (folder / "shipping.md").unlink()
    edited = await run_ingest(client, config, task_queue, retrieval, folder)
    assert (edited.files_ingested, edited.files_unchanged) == (1, HANDBOOK_FILES - 2)
    assert (edited.removed_files, edited.removed_chunks) == (1, len(shipping))
    new_refunds = points(retrieval, "docs", source="refunds.md")
    assert len(new_refunds) == edited.chunks == len(old_refunds) + 1
    assert len({p["sha256"] for p in new_refunds}) == 1  # the old version is gone
    assert new_refunds[0]["sha256"] != old_refunds[0]["sha256"]
    assert points(retrieval, "docs", source="shipping.md") == []
    total = first.chunks - len(shipping) + 1
    assert len(points(retrieval, "docs")) == total
    retrieval.store.close()


CRASHING = {"refunds.md", "billing.md", "gift-cards.html"}


class CrashAfterStoring(RetrievalActivities):
    """Stores the batch, then fails before reporting it: what a worker killed there does."""

    crashes = 0

    @activity.defn(name="ingest_document")
    def ingest_document(self, batch: DocumentBatch) -> BatchResult:
        result = super().ingest_document(batch)
        if batch.file.source in CRASHING and activity.info().attempt == 1:
            type(self).crashes += 1
            raise RuntimeError("worker died after the upsert")
        return result


async def test_a_crash_after_storing_a_batch_resumes_without_duplicates(
    client: Client, config: StewardConfig, task_queue: str, tmp_path: Path
) -> None:
    retrieval = CrashAfterStoring(
        VectorStore(path=tmp_path / "qdrant"), HashEmbedder, chunk_tokens=32
    )
    done = await run_ingest(client, config, task_queue, retrieval, HANDBOOK)
    assert CrashAfterStoring.crashes == len(CRASHING)  # each stored, then crashed, once
    stored = points(retrieval, "docs")
    assert len(stored) == done.chunks
    keys = {(p["source"], p["position"]) for p in stored}
    assert len(keys) == len(stored)  # each chunk once
    assert points(retrieval, "docs.STAGING") == []
    retrieval.store.close()


class FailsOnSecondBatch(RetrievalActivities):
    """A file that turns out bad half-way through (say, its disk fails)."""

    @activity.defn(name="ingest_document")
    def ingest_document(self, batch: DocumentBatch) -> BatchResult:
        if batch.file.source == "long.md" and batch.start > 0:
            raise ApplicationError(
                "long.md: read error half-way", type="BadDocument", non_retryable=True
            )
        return super().ingest_document(batch)


async def test_bad_files_are_reported_and_the_rest_is_ingested_whole(
    client: Client, config: StewardConfig, task_queue: str, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.md").write_text("# Good\n\nThis one is fine.\n")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02 not text")
    (folder / "latin1.md").write_bytes("caf\xe9".encode("latin-1"))
    with (folder / "huge.md").open("wb") as stream:
        stream.truncate(200 * 1024 * 1024)  # sparse: 200 MB on paper
    (folder / "notes.csv").write_text("ignored,not a document type\n")
    long_v1 = "".join(f"## Part {i}\n\nParagraph {i} of the long guide.\n\n" for i in range(100))
    (folder / "long.md").write_text(long_v1)
    store = tmp_path / "qdrant"

    whole = retrieval_at(store, chunk_tokens=32)
    first = await run_ingest(client, config, task_queue, whole, folder)
    v1 = points(whole, "docs", source="long.md")
    assert len(v1) == 100
    assert {p.source for p in first.problems} == {"binary.txt", "latin1.md", "huge.md"}
    reasons = {p.source: p.reason for p in first.problems}
    assert "binary content" in reasons["binary.txt"]
    assert "not UTF-8" in reasons["latin1.md"]
    assert "209,715,200 bytes is over the 20,000,000-byte limit" in reasons["huge.md"]
    assert first.files_ingested == 2 and first.files_total == 5
    whole.store.close()

    (folder / "long.md").write_text(long_v1 + "## Part 100\n\nOne more.\n")
    failing = FailsOnSecondBatch(VectorStore(path=store), WordLlamaEmbedder, chunk_tokens=32)
    second = await run_ingest(client, config, task_queue, failing, folder)
    assert [(p.source, p.reason) for p in second.problems if p.source == "long.md"] == [
        ("long.md", "read error half-way")
    ]
    after = points(failing, "docs", source="long.md")
    assert sorted(p["position"] for p in after) == list(range(100))  # the old version, whole
    assert {p["sha256"] for p in after} == {v1[0]["sha256"]}
    assert points(failing, "docs.STAGING") == []  # the half-written version was discarded
    assert len(points(failing, "docs", source="good.md")) == 1
    failing.store.close()

    # the same edit without the fault: staged over two batches, published, v1 dropped
    healthy = retrieval_at(store, chunk_tokens=32)
    third = await run_ingest(client, config, task_queue, healthy, folder)
    assert third.files_ingested == 1 and third.chunks == 101
    after = points(healthy, "docs", source="long.md")
    assert len(after) == 101 and {p["sha256"] for p in after} != {v1[0]["sha256"]}
    assert len({p["sha256"] for p in after}) == 1
    assert points(healthy, "docs.STAGING") == []
    healthy.store.close()


async def test_another_embedding_model_is_refused(
    client: Client, config: StewardConfig, task_queue: str, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nSome text.\n")
    other = RetrievalActivities(VectorStore(path=tmp_path / "qdrant"), HashEmbedder)
    await run_ingest(client, config, task_queue, other, folder)
    other.store.close()

    default = retrieval_at(tmp_path / "qdrant")
    with pytest.raises(WorkflowFailureError) as failed:
        await run_ingest(client, config, task_queue, default, folder)
    activity_error = failed.value.cause
    assert isinstance(activity_error, ActivityError)
    message = str(activity_error.cause)
    assert "built with test/hash-8 (8 dimensions)" in message
    assert "wordllama/l2_supercat_256 (256 dimensions)" in message
    with pytest.raises(ApplicationError, match="built with test/hash-8") as refused:
        ActivityEnvironment().run(
            default.retrieve, RetrieveRequest(collection="docs", query="text")
        )
    assert refused.value.non_retryable and refused.value.type == "EmbedderMismatch"
    default.store.close()


def test_a_missing_collection_and_a_locked_store_say_what_to_do(tmp_path: Path) -> None:
    retrieval = retrieval_at(tmp_path / "qdrant")
    with pytest.raises(ApplicationError, match=r"no collection 'nope'.*steward ingest") as missing:
        ActivityEnvironment().run(
            retrieval.retrieve, RetrieveRequest(collection="nope", query="refunds")
        )
    assert missing.value.non_retryable
    second = retrieval_at(tmp_path / "qdrant")
    with pytest.raises(ApplicationError, match=r"open in another process.*QDRANT_URL") as locked:
        ActivityEnvironment().run(
            second.retrieve, RetrieveRequest(collection="nope", query="refunds")
        )
    assert not locked.value.non_retryable  # the other process may let go: retry
    retrieval.store.close()


async def test_tags_are_stored_and_filter_searches(
    client: Client, config: StewardConfig, task_queue: str, tmp_path: Path
) -> None:
    public, internal = tmp_path / "public", tmp_path / "internal"
    public.mkdir()
    internal.mkdir()
    (public / "refunds.md").write_text("# Refunds\n\nRefunds take five business days.\n")
    (internal / "refunds-notes.md").write_text("# Refunds\n\nInternal: refunds over 50 euros.\n")
    retrieval = retrieval_at(tmp_path / "qdrant")
    async with running_workers(
        client, config, task_queue, activities_for_tests(config, retrieval=retrieval)
    ):
        for folder, tag in ((public, "public"), (internal, "internal")):
            await ingest(
                client, IngestRequest(root=str(folder), collection="docs", tags=[tag]), task_queue
            )
    everything = ActivityEnvironment().run(
        retrieval.retrieve, RetrieveRequest(collection="docs", query="refunds", top_k=10)
    )
    assert {c.citation.source for c in everything.chunks} == {"refunds.md", "refunds-notes.md"}
    tagged = ActivityEnvironment().run(
        retrieval.retrieve,
        RetrieveRequest(collection="docs", query="refunds", top_k=10, tags=["public"]),
    )
    assert [c.citation.source for c in tagged.chunks] == ["refunds.md"]
    # two folders share the collection: re-ingesting one never prunes the other's files
    async with running_workers(
        client, config, task_queue, activities_for_tests(config, retrieval=retrieval)
    ):
        again = await ingest(
            client, IngestRequest(root=str(public), collection="docs", tags=["public"]), task_queue
        )
    assert (again.files_unchanged, again.removed_files) == (1, 0)
    assert len(points(retrieval, "docs", source="refunds-notes.md")) == 1
    retrieval.store.close()
