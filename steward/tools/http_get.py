"""http_get: fetch a page from a host on the worker's allow list.

The activity is `activities.tools.http_get.HttpActivities.http_get`; the allow list, the
address checks and the size limit are the worker's, applied where it fetches.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator

from steward.models import RiskClass, Strict, ToolSpec
from steward.tools.entry import Tool, at_most


class HttpGetArgs(Strict):
    """Arguments of http_get: an http(s) URL (its host must be on the worker's allow list)."""

    url: str = Field(min_length=1, description="http:// or https:// URL")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        at_most(value, 2_000)
        try:
            parts = urlsplit(value)
            _ = parts.port  # reading the port is what validates it
        except ValueError as err:
            raise ValueError(f"not a valid URL ({err})") from None
        if parts.scheme not in ("http", "https"):
            raise ValueError("only http:// and https:// URLs can be fetched")
        if not parts.hostname:
            raise ValueError("the URL names no host")
        if "@" in parts.netloc:
            # Anything in the arguments is stored in history; credentials do not go there.
            raise ValueError("credentials in the URL are refused")
        return value


HTTP_GET = Tool(
    spec=ToolSpec(
        name="http_get",
        description="Fetch a web page from an allowed host (url); returns status and text.",
        risk=RiskClass.READ,
        scopes=["http:get"],
        side_effects=False,
    ),
    arguments=HttpGetArgs,
    provider="http",
    would=lambda args: f"fetched {args.url}",
)
