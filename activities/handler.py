"""litellm's custom-provider interface, written once: `Handler` and the `Call` it passes on.

litellm calls a custom provider (`CustomLLM`) through four methods with sixteen
parameters each, most of which a provider here ignores. `Handler` takes them, keeps what
a provider reads in one `Call`, and hands it to four short methods a provider writes:
`complete`, `acomplete`, `stream` and `astream`. The local model (`activities.local_model`)
and the tests' fake model are both written this way.

Importing this module imports litellm (`Handler` subclasses its `CustomLLM`), so only code
that installs a provider imports it; the `complete` activity itself does not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
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
    """A litellm provider answering `Call`s: override the four methods below `astreaming`."""

    def completion(
        self,
        model: str,
        messages: list[Any],
        api_base: str,
        custom_prompt_dict: dict[str, Any],
        model_response: ModelResponse,
        print_verbose: Callable[..., Any],
        encoding: Any,
        api_key: Any,
        logging_obj: Any,
        optional_params: dict[str, Any],
        acompletion: Any = None,
        litellm_params: Any = None,
        logger_fn: Any = None,
        headers: Any = None,
        timeout: float | httpx.Timeout | None = None,
        client: Any = None,
    ) -> ModelResponse:
        """See base class; answered by `complete`."""
        call = Call(model, messages, optional_params, api_base, api_key, timeout)
        return self.complete(call, model_response)

    async def acompletion(
        self,
        model: str,
        messages: list[Any],
        api_base: str,
        custom_prompt_dict: dict[str, Any],
        model_response: ModelResponse,
        print_verbose: Callable[..., Any],
        encoding: Any,
        api_key: Any,
        logging_obj: Any,
        optional_params: dict[str, Any],
        acompletion: Any = None,
        litellm_params: Any = None,
        logger_fn: Any = None,
        headers: Any = None,
        timeout: float | httpx.Timeout | None = None,  # noqa: ASYNC109  # litellm's name
        client: Any = None,
    ) -> ModelResponse:
        """See base class; answered by `acomplete`."""
        call = Call(model, messages, optional_params, api_base, api_key, timeout)
        return await self.acomplete(call, model_response)

    def streaming(
        self,
        model: str,
        messages: list[Any],
        api_base: str,
        custom_prompt_dict: dict[str, Any],
        model_response: ModelResponse,
        print_verbose: Callable[..., Any],
        encoding: Any,
        api_key: Any,
        logging_obj: Any,
        optional_params: dict[str, Any],
        acompletion: Any = None,
        litellm_params: Any = None,
        logger_fn: Any = None,
        headers: Any = None,
        timeout: float | httpx.Timeout | None = None,
        client: Any = None,
    ) -> Iterator[GenericStreamingChunk]:
        """See base class; answered by `stream`."""
        return self.stream(Call(model, messages, optional_params, api_base, api_key, timeout))

    async def astreaming(  # type: ignore[override,misc]  # an async generator, as litellm calls it
        self,
        model: str,
        messages: list[Any],
        api_base: str,
        custom_prompt_dict: dict[str, Any],
        model_response: ModelResponse,
        print_verbose: Callable[..., Any],
        encoding: Any,
        api_key: Any,
        logging_obj: Any,
        optional_params: dict[str, Any],
        acompletion: Any = None,
        litellm_params: Any = None,
        logger_fn: Any = None,
        headers: Any = None,
        timeout: float | httpx.Timeout | None = None,  # noqa: ASYNC109  # litellm's name
        client: Any = None,
    ) -> AsyncIterator[GenericStreamingChunk]:
        """See base class; answered by `astream`."""
        call = Call(model, messages, optional_params, api_base, api_key, timeout)
        async for chunk in self.astream(call):
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
