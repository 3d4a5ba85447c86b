"""search_docs: the passages of the team's documents nearest a query, to cite as [n].

The activity is `activities.retrieval.RetrievalActivities.search_docs`, on the default
worker beside the store it reads. Which collections an agent may name is added to the
description when steward.yaml is resolved (`agents.NAME.collections`).
"""

from __future__ import annotations

from steward.models import RiskClass, ToolSpec
from steward.retrieval import SEARCH_DOCS, SearchDocsArgs
from steward.tools.entry import Tool

SEARCH = Tool(
    spec=ToolSpec(
        name=SEARCH_DOCS,
        description=(
            "Search the team's documents (query, collection, optional top_k); returns "
            "passages with their sources, to cite as [n]."
        ),
        risk=RiskClass.READ,
        scopes=["retrieval:search"],
        side_effects=False,
    ),
    arguments=SearchDocsArgs,
    provider="retrieval",
    would=lambda args: "searched the documents",
)
