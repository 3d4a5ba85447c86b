"""One collection of the embedded store: an Edge shard, its settings, and its index debt.

A collection is a folder: `collection.json` (the vectors it holds and the metadata it was
created with, such as the embedding model), `shard/` (Qdrant Edge's own files: segments,
HNSW graphs, payload indexes and a write-ahead log) and `pending` (how many points were
written since its HNSW index was last built). Edge builds an index only when asked, and
building holds the interpreter, so the store's indexer builds a copy in a child process
(`copy_for_index`) and swaps it in (`replace`), replaying the writes made meanwhile.

Nothing here locks: the store calls every method with its lock held.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import qdrant_edge as edge
from pydantic import BaseModel
from qdrant_client import models

from activities.edge import convert

SETTINGS = "collection.json"
SHARD = "shard"
BUILDING = "shard.building-"
"""A build's copy, named per build: a child left running by a killed worker writes only
into its own."""
READY = "shard.ready"
RETIRED = "shard.retired"
PENDING = "pending"
HNSW_M = 16
HNSW_EF_CONSTRUCT = 100
"""HNSW's graph: Qdrant's defaults (links per point, candidates while building)."""


class Tuning(BaseModel):
    """When segments get an HNSW graph, and when a search scans instead of using it.

    Both are Qdrant's defaults, in kilobytes of vectors as Qdrant counts them (10,000 KB is
    10,000 vectors of 256 dimensions, the default embedding model's).
    """

    index_kb: int = 10_000
    """A segment with more vectors than this gets a graph, and as many written since the
    last build make a collection owe one. Below it, comparing with each is quick."""
    full_scan_kb: int = 10_000
    """A search that may match fewer vectors than this (a small segment, a narrow filter)
    compares with each of them instead of walking the graph: as fast there, and exact."""


class Settings(BaseModel):
    """What a collection was created with, in qdrant-client's own models."""

    vectors: dict[str, models.VectorParams]
    sparse_vectors: dict[str, models.SparseVectorParams] = {}
    metadata: dict[str, Any] | None = None
    keyword_fields: list[str] = []
    tuning: Tuning = Tuning()


class Collection:
    """A collection's shard (opened on first use), settings and points not yet indexed."""

    def __init__(self, folder: Path, settings: Settings, pending: int) -> None:
        self.folder, self.settings, self.pending = folder, settings, pending
        self._shard: edge.EdgeShard | None = None
        self._recorded: list[edge.UpdateOperation] | None = None

    @classmethod
    def create(cls, folder: Path, settings: Settings) -> Collection:
        """A new, empty collection; it appears whole or not at all."""
        draft = folder.with_name(f".{folder.name}.new")
        shutil.rmtree(draft, ignore_errors=True)
        draft.mkdir(parents=True)
        shard = edge.EdgeShard.create(str(draft / SHARD), _config(settings))
        try:
            for field in settings.keyword_fields:
                shard.update(
                    edge.UpdateOperation.create_field_index(field, edge.PayloadSchemaType.Keyword)
                )
        finally:
            shard.close()
        (draft / SETTINGS).write_text(settings.model_dump_json(indent=2))
        _write_pending(draft, 0)
        draft.rename(folder)
        return cls(folder, settings, 0)

    @classmethod
    def open(cls, folder: Path) -> Collection:
        """A collection as an earlier process left it (its shard opens when first used)."""
        settings = Settings.model_validate_json((folder / SETTINGS).read_text())
        # A process stopped during a swap left the new shard ready or the old one retired.
        for whole in (READY, RETIRED):
            if not (folder / SHARD).exists() and (folder / whole).exists():
                (folder / whole).rename(folder / SHARD)
        # An index build it did not finish is started again, from scratch, when due.
        for partial in [*folder.glob(f"{BUILDING}*"), folder / READY, folder / RETIRED]:
            shutil.rmtree(partial, ignore_errors=True)
        pending = folder / PENDING
        return cls(folder, settings, int(pending.read_text()) if pending.exists() else 0)

    @property
    def owes_index(self) -> bool:
        """Whether enough points were written since the last build to build again."""
        largest = max((params.size for params in self.settings.vectors.values()), default=1)
        return self.pending * largest * 4 >= self.settings.tuning.index_kb * 1024

    @property
    def shard(self) -> edge.EdgeShard:
        """The Edge shard, loaded on first use."""
        if self._shard is None:
            self._shard = edge.EdgeShard.load(str(self.folder / SHARD))
        return self._shard

    def update(self, operation: edge.UpdateOperation, points: int) -> None:
        """Apply one write, and count the points it touched as not yet indexed."""
        self.shard.update(operation)
        if self._recorded is not None:
            self._recorded.append(operation)
        if points:
            self.pending += points
            _write_pending(self.folder, self.pending)

    def info(self, status: models.CollectionStatus) -> models.CollectionInfo:
        """The collection described as a Qdrant server describes one."""
        found = self.shard.info()
        return models.CollectionInfo(
            status=status,
            optimizer_status=models.OptimizersStatusOneOf.OK,
            points_count=found.points_count,
            indexed_vectors_count=found.indexed_vectors_count,
            segments_count=found.segments_count,
            payload_schema={},
            config=models.CollectionConfig(
                params=models.CollectionParams(
                    vectors=dict(self.settings.vectors),
                    sparse_vectors=dict(self.settings.sparse_vectors) or None,
                ),
                hnsw_config=models.HnswConfig(
                    m=HNSW_M,
                    ef_construct=HNSW_EF_CONSTRUCT,
                    full_scan_threshold=self.settings.tuning.full_scan_kb,
                ),
                optimizer_config=models.OptimizersConfig(
                    default_segment_number=0,
                    flush_interval_sec=0,  # Edge flushes when closed; its WAL keeps writes
                    indexing_threshold=self.settings.tuning.index_kb,
                ),
                metadata=self.settings.metadata,
            ),
        )

    # --- index builds: copy, build elsewhere, swap back --------------------------------

    def copy_for_index(self) -> tuple[Path, int]:
        """Copy the shard for an index build; record writes from now until `replace`.

        Returns the copy's folder and the pending count the build will settle.
        """
        built = self.folder / f"{BUILDING}{uuid.uuid4().hex[:12]}"
        self.close()  # flushed and unlocked, so the copy is whole
        shutil.copytree(self.folder / SHARD, built)
        self._recorded = []
        return built, self.pending

    def replace(self, built: Path, settled: int) -> None:
        """Swap in the indexed copy, with the writes made while it was built applied first.

        The copy is brought up to date and flushed before the swap, so a crash at any point
        leaves a whole shard to open: the old one, or the new one (see `open`).
        """
        recorded, self._recorded = self._recorded or [], None
        self.close()
        copy = edge.EdgeShard.load(str(built))
        try:
            for operation in recorded:
                copy.update(operation)
        finally:
            copy.close()
        ready = built.rename(self.folder / READY)
        (self.folder / SHARD).rename(self.folder / RETIRED)
        ready.rename(self.folder / SHARD)
        shutil.rmtree(self.folder / RETIRED)
        self.pending = max(0, self.pending - settled)
        _write_pending(self.folder, self.pending)

    def abandon(self, built: Path) -> None:
        """Forget a build that did not finish; the shard in use is unchanged."""
        self._recorded = None
        shutil.rmtree(built, ignore_errors=True)

    def close(self) -> None:
        """Flush and release the shard's files (it reopens on next use)."""
        if self._shard is not None:
            self._shard.close()
            self._shard = None


def _config(settings: Settings) -> edge.EdgeConfig:
    """Edge's configuration: the vectors, HNSW's parameters, when to index a segment."""
    for name, params in settings.vectors.items():
        if params.multivector_config is not None or params.quantization_config is not None:
            raise convert.Unsupported(f"vector {name!r}: multivectors or quantization")
    return edge.EdgeConfig(
        vectors={
            name: edge.EdgeVectorParams(
                size=params.size, distance=convert.distance(params.distance)
            )
            for name, params in settings.vectors.items()
        },
        sparse_vectors={
            name: edge.EdgeSparseVectorParams(
                modifier=edge.Modifier.Idf if params.modifier == models.Modifier.IDF else None
            )
            for name, params in settings.sparse_vectors.items()
        },
        hnsw_config=edge.HnswIndexConfig(
            m=HNSW_M,
            ef_construct=HNSW_EF_CONSTRUCT,
            full_scan_threshold=settings.tuning.full_scan_kb,
        ),
        optimizers=edge.EdgeOptimizersConfig(indexing_threshold=settings.tuning.index_kb),
    )


def _write_pending(folder: Path, count: int) -> None:
    scratch = folder / f".{PENDING}"
    scratch.write_text(str(count))
    os.replace(scratch, folder / PENDING)
