"""litellm's custom-provider interface, written once: `Handler` and the `Call` it passes on.

litellm calls a custom provider (`CustomLLM`) through four methods with sixteen keyword
arguments each, most of which a provider here ignores. `Handler` takes them, keeps what
a provider reads in one `Call`, and hands it to four short methods a provider writes:
`complete`, `acomplete`, `stream` and `astream`. The local model (`activities.local_model`)
and the tests' fake model are both written this way.

Importing this module imports litellm (`Handler` subclasses its `CustomLLM`), so only code
that installs a provider imports it; the `complete` activity itself does not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from litellm.llms.custom_llm import CustomLLM
from litellm.types.utils import GenericStreamingChunk, ModelResponse


@dataclass(frozen=True)
class Call:
    """One request as litellm hands it to the provider."""

    model: str
    """The model's name after the provider prefix (`steward-local/NAME` gives NAME)."""
    messages: list[Any]
    optional_params: Mapping[str, Any]
    """What the caller set beyond the messages: response_format, max_tokens, tools..."""
    api_base: str | None
    api_key: Any
    timeout: float | httpx.Timeout | None

    def seconds(self) -> float | None:
        """The read timeout in seconds, or None for none."""
        return self.timeout.read if isinstance(self.timeout, httpx.Timeout) else self.timeout


class Handler(CustomLLM):
    """A litellm provider answering `Call`s: override the four methods below `astreaming`.

    litellm calls a custom provider's entry points with keyword arguments only, sixteen of
    them (`litellm.main`, through `custom_chat_llm_router`); each entry point here reads the
    ones a provider needs into a `Call` and hands it on.
    """

    def completion(self, *args: Any, **params: Any) -> ModelResponse:
        """See base class; answered by `complete`."""
        return self.complete(_call(args, params), params["model_response"])

    async def acompletion(self, *args: Any, **params: Any) -> ModelResponse:
        """See base class; answered by `acomplete`."""
        return await self.acomplete(_call(args, params), params["model_response"])

    def streaming(self, *args: Any, **params: Any) -> Iterator[GenericStreamingChunk]:
        """See base class; answered by `stream`."""
        return self.stream(_call(args, params))

    async def astreaming(  # type: ignore[override]  # an async generator, as litellm calls it
        self, *args: Any, **params: Any
    ) -> AsyncIterator[GenericStreamingChunk]:
        """See base class; answered by `astream`."""
        async for chunk in self.astream(_call(args, params)):
            yield chunk

    def complete(self, call: Call, response: ModelResponse) -> ModelResponse:
        """Answer `call` into `response`, blocking the calling thread."""
        raise NotImplementedError

    async def acomplete(self, call: Call, response: ModelResponse) -> ModelResponse:
        """Answer `call` into `response` without blocking the event loop."""
        raise NotImplementedError

    def stream(self, call: Call) -> Iterator[GenericStreamingChunk]:
        """Answer `call` piece by piece, blocking between pieces."""
        raise NotImplementedError

    def astream(self, call: Call) -> AsyncIterator[GenericStreamingChunk]:
        """Answer `call` piece by piece without blocking the event loop."""
        raise NotImplementedError


def _call(args: tuple[Any, ...], params: Mapping[str, Any]) -> Call:
    if args:
        raise TypeError("litellm passes a custom provider its arguments by keyword")
    return Call(
        model=params["model"],
        messages=params["messages"],
        optional_params=params.get("optional_params") or {},
        api_base=params.get("api_base"),
        api_key=params.get("api_key"),
        timeout=params.get("timeout"),
    )
