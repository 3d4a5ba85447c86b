"""Translate between qdrant-client's models and Qdrant Edge's types.

Retrieval speaks qdrant-client's models to every store, so its code is the same for a
Qdrant server and for the embedded Edge shards. Edge has types of its own for the same
ideas (its own `Filter`, `Point`, `Query`...), built in Rust; this module maps the part of
qdrant-client's vocabulary Steward uses, and its near neighbours, onto them and back.
Anything outside that part raises `Unsupported` naming it, rather than being half
honoured: a filter silently dropped would return chunks the caller meant to exclude.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import qdrant_edge as edge
from qdrant_client import models

PointId = int | uuid.UUID | str
"""An id as Edge takes it."""
RRF_K = 2
"""Reciprocal rank fusion's constant when a query names none: Qdrant server's default."""

_DISTANCES = {
    models.Distance.COSINE: edge.Distance.Cosine,
    models.Distance.DOT: edge.Distance.Dot,
    models.Distance.EUCLID: edge.Distance.Euclid,
    models.Distance.MANHATTAN: edge.Distance.Manhattan,
}


class Unsupported(NotImplementedError):
    """A qdrant-client model the embedded store does not translate."""

    def __init__(self, what: object) -> None:
        name = what if isinstance(what, str) else type(what).__name__
        super().__init__(f"the embedded Qdrant store does not support {name}")


# --- into Edge -------------------------------------------------------------------------


def distance(value: models.Distance) -> edge.Distance:
    """Edge's name for a distance function."""
    try:
        return _DISTANCES[value]
    except KeyError:
        raise Unsupported(f"distance {value}") from None


def point(source: models.PointStruct) -> edge.Point:
    """A point to store: its id, named vectors and payload."""
    return edge.Point(id=point_id(source.id), vector=vectors(source.vector), payload=source.payload)


def point_id(value: Any) -> PointId:
    """Ids are whole numbers or UUIDs; Edge takes a UUID as its text."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, int | str):
        return value
    raise Unsupported(f"a point id of type {type(value).__name__}")


def vectors(value: Any) -> dict[str, Any]:
    """Named vectors, dense (lists of floats) or sparse."""
    if not isinstance(value, Mapping):
        raise Unsupported("unnamed vectors (collections here name theirs)")
    return {name: vector(one) for name, one in value.items()}


def vector(value: Any) -> Any:
    """One vector: a sparse one becomes Edge's, a dense one a plain list of floats."""
    if isinstance(value, models.SparseVector):
        return edge.SparseVector(indices=list(value.indices), values=list(value.values))
    if hasattr(value, "tolist"):  # a numpy array
        return value.tolist()
    if isinstance(value, list) and (not value or isinstance(value[0], int | float)):
        return value  # Edge checks each number (and the length) as it takes the list
    raise Unsupported(value)


def filter_(value: Any) -> edge.Filter | None:
    """A filter of must, should and must_not clauses."""
    if value is None:
        return None
    if not isinstance(value, models.Filter):
        raise Unsupported(value)
    if value.min_should is not None:
        raise Unsupported("min_should")
    return edge.Filter(
        must=_conditions(value.must),
        should=_conditions(value.should),
        must_not=_conditions(value.must_not),
    )


def _conditions(value: Any) -> list[Any] | None:
    if value is None:
        return None
    return [_condition(one) for one in (value if isinstance(value, list) else [value])]


def _condition(value: Any) -> Any:
    if isinstance(value, models.Filter):
        return filter_(value)
    if isinstance(value, models.HasIdCondition):
        return edge.HasIdCondition({point_id(one) for one in value.has_id})
    if not isinstance(value, models.FieldCondition):
        raise Unsupported(value)
    if value.match is None or any(
        getattr(value, other) is not None
        for other in ("range", "geo_bounding_box", "geo_radius", "geo_polygon", "values_count")
    ):
        raise Unsupported("a field condition other than match")
    return edge.FieldCondition(key=value.key, match=_match(value.match))


def _match(value: Any) -> Any:
    if isinstance(value, models.MatchValue):
        return edge.MatchValue(value.value)
    if isinstance(value, models.MatchAny):
        return edge.MatchAny(value.any)
    if isinstance(value, models.MatchExcept):
        return edge.MatchExcept(value.except_)
    raise Unsupported(value)


def selector(value: Any) -> list[PointId] | edge.Filter:
    """What a delete names: a list of ids, or a filter."""
    if isinstance(value, models.PointIdsList):
        return [point_id(one) for one in value.points]
    if isinstance(value, models.FilterSelector):
        value = value.filter
    if isinstance(value, models.Filter):
        found = filter_(value)
        assert found is not None
        return found
    if isinstance(value, list):
        return [point_id(one) for one in value]
    raise Unsupported(value)


def query(value: Any, using: str | None) -> Any:
    """A query: the nearest to a dense or sparse vector, or a fusion of prefetches."""
    if value is None:
        return None
    if isinstance(value, models.NearestQuery):
        if value.mmr is not None:
            raise Unsupported("mmr")
        value = value.nearest
    if isinstance(value, models.FusionQuery):
        if value.fusion == models.Fusion.RRF:
            return edge.Fusion.Rrf(k=RRF_K)
        return edge.Fusion.Dbsf()
    if isinstance(value, models.RrfQuery):
        k = value.rrf.k if value.rrf.k is not None else RRF_K
        return edge.Fusion.Rrf(k=k, weights=value.rrf.weights)
    return edge.Query.Nearest(vector(value), using=using)


def prefetches(value: models.Prefetch | list[models.Prefetch] | None) -> list[edge.Prefetch]:
    """The stages a fused query ranks first."""
    if value is None:
        return []
    stages = value if isinstance(value, list) else [value]
    for stage in stages:
        if stage.lookup_from is not None:
            raise Unsupported("lookup_from")
    return [
        edge.Prefetch(
            limit=stage.limit if stage.limit is not None else 10,
            query=query(stage.query, stage.using),
            prefetches=prefetches(stage.prefetch),
            params=search_params(stage.params),
            filter=filter_(stage.filter),
            score_threshold=stage.score_threshold,
        )
        for stage in stages
    ]


def search_params(value: Any) -> edge.SearchParams | None:
    """The HNSW beam width, or an exact (every point) search."""
    if value is None:
        return None
    if not isinstance(value, models.SearchParams):
        raise Unsupported(value)
    return edge.SearchParams(
        hnsw_ef=value.hnsw_ef, exact=bool(value.exact), indexed_only=bool(value.indexed_only)
    )


def with_payload(value: Any) -> Any:
    """All of the payload, none of it, or the named fields."""
    if isinstance(value, bool):
        return value
    if isinstance(value, models.PayloadSelectorInclude):
        return edge.PayloadSelector.Include(list(value.include))
    if isinstance(value, models.PayloadSelectorExclude):
        return edge.PayloadSelector.Exclude(list(value.exclude))
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [str(one) for one in value]
    raise Unsupported(value)


def with_vectors(value: Any) -> bool | list[str]:
    """All vectors, none, or the named ones."""
    if isinstance(value, bool):
        return value
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [str(one) for one in value]
    raise Unsupported(value)


# --- out of Edge -----------------------------------------------------------------------


def scored(found: edge.ScoredPoint) -> models.ScoredPoint:
    """A search hit as qdrant-client returns one."""
    return models.ScoredPoint(
        id=stored_id(found.id),
        version=found.version,
        score=found.score,
        payload=found.payload,
        vector=stored_vectors(found.vector),
    )


def record(found: edge.Record) -> models.Record:
    """A stored point as qdrant-client returns one."""
    return models.Record(
        id=stored_id(found.id), payload=found.payload, vector=stored_vectors(found.vector)
    )


def stored_id(value: Any) -> int | str:
    """A UUID id as text, the way qdrant-client gives it back."""
    return value if isinstance(value, int) else str(value)


def stored_vectors(value: Any) -> Any:
    """Named vectors, sparse ones as qdrant-client's `SparseVector`."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {name: _stored_vector(one) for name, one in value.items()}
    return _stored_vector(value)


def _stored_vector(value: Any) -> Any:
    if isinstance(value, edge.SparseVector):
        return models.SparseVector(indices=list(value.indices), values=list(value.values))
    return value
