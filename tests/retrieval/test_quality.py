"""Retrieval quality on the shipped handbook: recall@5 and MRR must not drop.

Measured (wordllama l2_supercat, 200-token chunks, 30 queries): recall@5 1.00 and MRR
0.983, dense only and hybrid alike. The floors leave room for one or two queries to slip,
not for a real regression.
"""

from __future__ import annotations

import pytest
import yaml
from temporalio.testing import ActivityEnvironment

from activities.retrieval import RetrievalActivities
from steward.retrieval import RetrieveRequest, recall_and_mrr
from tests.conftest import REPO

QUERIES = yaml.safe_load((REPO / "examples" / "handbook-queries.yaml").read_text())
FLOORS = {True: (0.93, 0.90), False: (0.93, 0.90)}


@pytest.mark.parametrize("hybrid", [True, False], ids=["hybrid", "dense"])
def test_recall_at_5_and_mrr_hold(handbook: RetrievalActivities, hybrid: bool) -> None:
    ranked, relevant = [], []
    for labelled in QUERIES["queries"]:
        found = ActivityEnvironment().run(
            handbook.retrieve,
            RetrieveRequest(
                collection=QUERIES["collection"], query=labelled["query"], top_k=5, hybrid=hybrid
            ),
        )
        ranked.append([chunk.citation.source for chunk in found.chunks])
        relevant.append(set(labelled["relevant"]))
    recall, mrr = recall_and_mrr(ranked, relevant)
    print(f"{'hybrid' if hybrid else 'dense'}: recall@5 {recall:.3f}, MRR {mrr:.3f}")
    floor_recall, floor_mrr = FLOORS[hybrid]
    assert recall >= floor_recall and mrr >= floor_mrr, (recall, mrr)


def test_the_measures_themselves() -> None:
    ranked = [["a", "b"], ["c", "a"], ["x", "y", "z", "w", "v", "a"]]
    relevant = [{"a"}, {"a"}, {"a"}]
    recall, mrr = recall_and_mrr(ranked, relevant, k=5)
    assert recall == pytest.approx(2 / 3)
    assert mrr == pytest.approx((1 + 1 / 2 + 1 / 6) / 3)
    with pytest.raises(ValueError, match="one ranking per labelled query"):
        recall_and_mrr([], [])


def test_filters_by_source_and_threshold(handbook: RetrievalActivities) -> None:
    only = ActivityEnvironment().run(
        handbook.retrieve,
        RetrieveRequest(collection="handbook", query="refund", sources=["billing.md"], top_k=10),
    )
    assert only.chunks and {c.citation.source for c in only.chunks} == {"billing.md"}
    strict = ActivityEnvironment().run(
        handbook.retrieve,
        RetrieveRequest(collection="handbook", query="refund", score_threshold=0.99, hybrid=False),
    )
    assert strict.chunks == []
