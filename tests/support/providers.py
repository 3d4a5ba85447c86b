"""Loopback stand-ins for OpenAI, Anthropic and Gemini that refuse what the real APIs refuse.

Each stub serves its provider's HTTP API on 127.0.0.1 and checks every request against
that provider's documented rules before answering: where a schema may have its root, which
JSON Schema keywords it may use, what strict mode demands (every object closed, every
property required), how tools are named and declared, how tool calls and their results
must pair up in the conversation, which fields the API knows at all. A request that
breaks a rule gets the 400 the provider would send, in its error shape, and is kept in
`refused`. One that passes is answered in the provider's wire format, streamed (server-sent
events) when the request asks for it: OpenAI's chat completion chunks, Anthropic's
message events, Gemini's `GenerateContentResponse` chunks.

The rules, as the providers document them:

- OpenAI Structured Outputs (`strict: true`, for `response_format` and for functions): the
  root is an object, never `anyOf`; every object has `additionalProperties: false` and
  lists every property in `required` (optional means nullable); only the supported
  keywords (types, `properties`, `required`, `additionalProperties`, `items`, `enum`,
  `const`, `anyOf`, `$defs`/`$ref`, `description`, `title`; strings `pattern` and `format`;
  numbers `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`;
  arrays `minItems`, `maxItems`); at most 10 levels of nesting, 5,000 properties and 1,000
  enum values. Function names match `^[a-zA-Z0-9_-]{1,64}$`; function parameters have an
  object at their root; a `tool` message answers a `tool_calls` message right before it,
  and every call is answered.
- Anthropic Messages: `x-api-key` and `anthropic-version` headers; `max_tokens` required;
  no field the API does not know; roles `user` and `assistant` only (the system prompt is
  its own field); no empty text block; each `tool_use` answered by a `tool_result` in the
  very next message. Tool names match `^[a-zA-Z0-9_-]{1,128}$`; `input_schema` has
  `type: object` at its root. Structured outputs (`output_format`, and strict tools) take
  a JSON Schema subset: every object has `additionalProperties: false`; no numeric or
  string-length bounds; `minItems` only 0 or 1; known string formats only; at most 24
  optional and 16 union-typed properties; no recursion.
- Gemini `generateContent`: the key in `x-goog-api-key` (or `?key=`); roles `user` and
  `model`; each function call turn followed at once by a turn with as many function
  responses. Function names start with a letter or `_` and use letters, digits, `_`, `.`,
  `:` and `-`, at most 64. `parameters` and `responseSchema` are an OpenAPI 3.0 subset
  (`type`, `format`, `title`, `description`, `nullable`, `enum`, `items`, `minItems`,
  `maxItems`, `properties`, `required`, `minProperties`, `maxProperties`, `minLength`,
  `maxLength`, `pattern`, `example`, `anyOf`, `propertyOrdering`, `default`, `minimum`,
  `maximum`): any other field (`additionalProperties`, `$ref`, `const`...) is an unknown
  name, and `type` is one name, never a list. `responseJsonSchema` is a JSON Schema subset
  and needs `responseMimeType: application/json`, as `responseSchema` does.

What the stub answers is decided by a `Responder` the test gives, from a provider-neutral
view of the request (`Seen`), so one script serves all three providers, and concurrent
runs (a parent and its specialists) each get the answer meant for them.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Final
from urllib.parse import parse_qs, urlsplit

# --- what the test decides: the answer to a request -----------------------------------------


@dataclass(frozen=True)
class Reply:
    """An answer: text, or calls of tools (by the name the request offered them under)."""

    text: str = ""
    calls: tuple[tuple[str, dict[str, Any]], ...] = ()
    prompt_tokens: int = 20
    completion_tokens: int = 8


@dataclass(frozen=True)
class Seen:
    """A request as any provider's stub sees it, in the same terms.

    `messages` are (role, text) with role user, assistant or tool (a tool result); an
    assistant turn that called tools reads `calls: NAME, NAME`. `schema` is the JSON schema
    the answer is constrained to, however the provider was asked for it.
    """

    provider: str
    system: str
    messages: list[tuple[str, str]]
    tools: list[str]
    schema: dict[str, Any] | None

    @property
    def tool_results(self) -> list[str]:
        """The texts of the tool results in the conversation, in order."""
        return [text for role, text in self.messages if role == "tool"]

    @property
    def last_user(self) -> str:
        """The newest user text."""
        return next((text for role, text in reversed(self.messages) if role == "user"), "")


Responder = Callable[[Seen], Reply]


@dataclass
class Recorded:
    """One request the stub received: its path, lower-cased headers, JSON body, and the
    problems that made the stub refuse it (empty when it was answered).
    """

    path: str
    headers: Mapping[str, str]
    body: dict[str, Any]
    problems: list[str] = field(default_factory=list)


# --- the rules ------------------------------------------------------------------------------

JSON_TYPES: Final = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})

OPENAI_STRICT_KEYWORDS: Final = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "anyOf",
        "$defs",
        "definitions",
        "$ref",
        "description",
        "title",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minItems",
        "maxItems",
    }
)
OPENAI_MAX_DEPTH: Final = 10
OPENAI_MAX_PROPERTIES: Final = 5_000
OPENAI_MAX_ENUM_VALUES: Final = 1_000
OPENAI_NAME: Final = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

ANTHROPIC_STRUCTURED_KEYWORDS: Final = frozenset(
    {
        "type",
        "description",
        "title",
        "enum",
        "const",
        "default",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "minItems",
        "anyOf",
        "allOf",
        "$ref",
        "$defs",
        "definitions",
        "format",
        "pattern",
    }
)
ANTHROPIC_FORMATS: Final = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}
)
ANTHROPIC_MAX_OPTIONAL: Final = 24
ANTHROPIC_MAX_UNIONS: Final = 16
ANTHROPIC_NAME: Final = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
ANTHROPIC_FIELDS: Final = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "metadata",
        "thinking",
        "output_format",
        "output_config",
        "service_tier",
    }
)

GEMINI_OPENAPI_FIELDS: Final = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "items",
        "minItems",
        "maxItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "minimum",
        "maximum",
    }
)
GEMINI_TYPES: Final = frozenset(
    {"TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"}
)
GEMINI_JSON_SCHEMA_KEYWORDS: Final = frozenset(
    {
        "$id",
        "$defs",
        "$ref",
        "$anchor",
        "type",
        "format",
        "title",
        "description",
        "enum",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "anyOf",
        "oneOf",
        "properties",
        "additionalProperties",
        "required",
        "propertyOrdering",
    }
)
GEMINI_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")
GEMINI_FIELDS: Final = frozenset(
    {
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "generationConfig",
        "safetySettings",
        "cachedContent",
    }
)
GEMINI_GENERATION_FIELDS: Final = frozenset(
    {
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "candidateCount",
        "maxOutputTokens",
        "temperature",
        "topP",
        "topK",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "thinkingConfig",
    }
)
GEMINI_PART_FIELDS: Final = frozenset(
    {"text", "inlineData", "fileData", "functionCall", "functionResponse", "thought"}
)


def _subschemas(node: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(where, schema) for each schema directly inside `node`."""
    for name, sub in (node.get("properties") or {}).items():
        yield f".properties.{name}", sub
    for key in ("$defs", "definitions"):
        for name, sub in (node.get(key) or {}).items():
            yield f".{key}.{name}", sub
    items = node.get("items")
    if isinstance(items, dict):
        yield ".items", items
    for key in ("anyOf", "allOf", "oneOf", "prefixItems"):
        for n, sub in enumerate(node.get(key) or ()):
            yield f".{key}[{n}]", sub


def _is_object(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    return kind == "object" or (isinstance(kind, list) and "object" in kind) or "properties" in node


def openai_strict_problems(schema: Any, where: str) -> list[str]:
    """Why OpenAI would refuse `schema` in strict mode (empty when it would not)."""
    if not isinstance(schema, dict):
        return [f"{where}: a schema must be an object"]
    problems = []
    if schema.get("type") != "object" or "anyOf" in schema:
        problems.append(f"{where}: the root must be an object, not anyOf or another type")
    counts = {"properties": 0, "enum": 0}

    def walk(node: Any, at: str, depth: int) -> None:
        if not isinstance(node, dict):
            problems.append(f"{at}: a schema must be an object")
            return
        unknown = sorted(set(node) - OPENAI_STRICT_KEYWORDS)
        if unknown:
            problems.append(f"{at}: {', '.join(unknown)} not permitted in strict mode")
        kinds = node.get("type", [])
        for kind in kinds if isinstance(kinds, list) else [kinds]:
            if kind not in JSON_TYPES:
                problems.append(f"{at}: unknown type {kind!r}")
        if _is_object(node):
            if depth > OPENAI_MAX_DEPTH:
                problems.append(f"{at}: more than {OPENAI_MAX_DEPTH} levels of nesting")
            if node.get("additionalProperties") is not False:
                problems.append(f"{at}: 'additionalProperties' is required to be false")
            properties = node.get("properties") or {}
            missing = [name for name in properties if name not in (node.get("required") or [])]
            if missing or "properties" not in node:
                problems.append(
                    f"{at}: 'required' must list every key in properties; missing {missing}"
                )
            counts["properties"] += len(properties)
            depth += 1
        counts["enum"] += len(node.get("enum") or ())
        for sub_at, sub in _subschemas(node):
            walk(sub, at + sub_at, depth)

    walk(schema, where, 1)
    if counts["properties"] > OPENAI_MAX_PROPERTIES:
        problems.append(f"{where}: more than {OPENAI_MAX_PROPERTIES} properties")
    if counts["enum"] > OPENAI_MAX_ENUM_VALUES:
        problems.append(f"{where}: more than {OPENAI_MAX_ENUM_VALUES} enum values")
    return problems


def anthropic_structured_problems(schema: Any, where: str) -> list[str]:
    """Why Anthropic would refuse `schema` for structured outputs or a strict tool."""
    if not isinstance(schema, dict):
        return [f"{where}: a schema must be an object"]
    problems = []
    counts = {"optional": 0, "unions": 0}
    definitions = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}

    def walk(node: Any, at: str, refs: tuple[str, ...]) -> None:
        if not isinstance(node, dict):
            problems.append(f"{at}: a schema must be an object")
            return
        unknown = sorted(set(node) - ANTHROPIC_STRUCTURED_KEYWORDS)
        if unknown:
            problems.append(f"{at}: {', '.join(unknown)} is not supported")
        if _is_object(node) and node.get("additionalProperties") is not False:
            problems.append(f"{at}: objects must set additionalProperties to false")
        if node.get("minItems", 0) not in (0, 1):
            problems.append(f"{at}: minItems must be 0 or 1")
        if "format" in node and node["format"] not in ANTHROPIC_FORMATS:
            problems.append(f"{at}: string format {node['format']!r} is not supported")
        if any(isinstance(value, dict | list) for value in node.get("enum") or ()):
            problems.append(f"{at}: enum values must be strings, numbers, booleans or null")
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name in refs:
                problems.append(f"{at}: recursive schemas are not supported")
            elif name in definitions:
                walk(definitions[name], f"{at}->{name}", (*refs, name))
        required = set(node.get("required") or ())
        for name, sub in (node.get("properties") or {}).items():
            if name not in required:
                counts["optional"] += 1
            if isinstance(sub, dict) and ("anyOf" in sub or isinstance(sub.get("type"), list)):
                counts["unions"] += 1
        for sub_at, sub in _subschemas(node):
            if not sub_at.startswith((".$defs", ".definitions")):
                walk(sub, at + sub_at, refs)

    walk(schema, where, ())
    if counts["optional"] > ANTHROPIC_MAX_OPTIONAL:
        problems.append(f"{where}: more than {ANTHROPIC_MAX_OPTIONAL} optional parameters")
    if counts["unions"] > ANTHROPIC_MAX_UNIONS:
        problems.append(f"{where}: more than {ANTHROPIC_MAX_UNIONS} parameters with union types")
    return problems


def gemini_openapi_problems(schema: Any, where: str) -> list[str]:
    """Why Gemini would refuse `schema` as function parameters or a `responseSchema`."""
    if not isinstance(schema, dict):
        return [f"{where}: Invalid value (a Schema object)"]
    problems = []
    for key in sorted(set(schema) - GEMINI_OPENAPI_FIELDS):
        problems.append(f"Unknown name {key!r} at '{where}': Cannot find field.")
    kind = schema.get("type")
    if kind is not None and (not isinstance(kind, str) or kind.upper() not in GEMINI_TYPES):
        problems.append(f"Invalid value at '{where}.type' ({kind!r})")
    properties = schema.get("properties") or {}
    for name in schema.get("required") or ():
        if name not in properties:
            problems.append(f"{where}.required: property {name!r} is not defined")
    if any(not isinstance(value, str) for value in schema.get("enum") or ()):
        problems.append(f"Invalid value at '{where}.enum' (enum values are strings)")
    for sub_at, sub in _subschemas(schema):
        problems.extend(gemini_openapi_problems(sub, where + sub_at))
    return problems


def gemini_json_schema_problems(schema: Any, where: str) -> list[str]:
    """Why Gemini would refuse `schema` as a `responseJsonSchema`."""
    if not isinstance(schema, dict):
        return [f"{where}: a schema must be an object"]
    problems = [
        f"{where}: keyword {key!r} is not supported"
        for key in sorted(set(schema) - GEMINI_JSON_SCHEMA_KEYWORDS)
    ]
    for sub_at, sub in _subschemas(schema):
        problems.extend(gemini_json_schema_problems(sub, where + sub_at))
    return problems


# --- the server -----------------------------------------------------------------------------


class ProviderStub:
    """A provider's API on loopback: checks each request, then answers it (see the module)."""

    name: ClassVar[str]

    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def refused(self) -> list[Recorded]:
        """The requests this stub refused, with why."""
        return [request for request in self.requests if request.problems]

    @property
    def base_url(self) -> str:
        """What a deployment's api_base should be to reach the stub."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.base_path}"

    base_path: ClassVar[str] = ""

    def start(self) -> ProviderStub:
        """Listen on a free loopback port and serve in a daemon thread."""
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True, name=self.name
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    # What each provider defines:

    def problems(self, path: str, headers: Mapping[str, str], body: dict[str, Any]) -> list[str]:
        """Why the provider would refuse this request."""
        raise NotImplementedError

    def seen(self, body: dict[str, Any]) -> Seen:
        """The request in provider-neutral terms."""
        raise NotImplementedError

    def refusal(self, problems: list[str]) -> bytes:
        """The provider's 400 body for these problems."""
        raise NotImplementedError

    def answer(self, path: str, body: dict[str, Any], reply: Reply) -> tuple[str, list[bytes]]:
        """(content type, body pieces) answering the request with `reply`."""
        raise NotImplementedError

    def _handle(self, path: str, headers: Mapping[str, str], body: dict[str, Any]) -> Any:
        recorded = Recorded(path, headers, body)
        with self._lock:
            self.requests.append(recorded)
        try:
            recorded.problems = self.problems(path, headers, body)
        except Exception as err:  # a request so malformed the checks themselves tripped
            recorded.problems = [f"malformed request: {type(err).__name__}: {err}"]
        if recorded.problems:
            return HTTPStatus.BAD_REQUEST, "application/json", [self.refusal(recorded.problems)]
        reply = self.respond(self.seen(body))
        content_type, pieces = self.answer(path, body, reply)
        return HTTPStatus.OK, content_type, pieces


@contextmanager
def running(stub: ProviderStub) -> Iterator[ProviderStub]:
    """`stub`, started, stopped on exit."""
    stub.start()
    try:
        yield stub
    finally:
        stub.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True


def _handler(stub: ProviderStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = {"unparsed": raw.decode("utf-8", "replace")}
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, content_type, pieces = stub._handle(self.path, headers, body)
            self.send_response(status)
            self.send_header("content-type", content_type)
            if content_type == "text/event-stream":
                self.send_header("connection", "close")
                self.end_headers()
                for piece in pieces:
                    self.wfile.write(piece)
                    self.wfile.flush()
                self.close_connection = True
                return
            payload = b"".join(pieces)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def _words(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text)


# --- OpenAI ---------------------------------------------------------------------------------


class OpenAIStub(ProviderStub):
    """OpenAI's Chat Completions API (`/v1/chat/completions`)."""

    name = "openai"
    base_path = "/v1"

    def problems(self, path: str, headers: Mapping[str, str], body: dict[str, Any]) -> list[str]:
        problems = []
        if path != "/v1/chat/completions":
            return [f"unknown URL {path}"]
        if not headers.get("authorization", "").startswith("Bearer "):
            problems.append("You didn't provide an API key (Authorization: Bearer ...)")
        if body.get("stream_options") is not None and not body.get("stream"):
            problems.append("The 'stream_options' parameter is only allowed when 'stream' is on")
        problems += self._message_problems(body.get("messages"))
        tools = body.get("tools") or []
        names = []
        for n, tool in enumerate(tools):
            function = tool.get("function") or {}
            at = f"tools[{n}].function"
            if tool.get("type") != "function":
                problems.append(f"tools[{n}].type: expected 'function'")
            name = function.get("name", "")
            names.append(name)
            if not OPENAI_NAME.match(name):
                problems.append(f"{at}.name: {name!r} does not match '^[a-zA-Z0-9_-]{{1,64}}$'")
            parameters = function.get("parameters")
            if parameters is not None:
                if not isinstance(parameters, dict) or parameters.get("type") != "object":
                    problems.append(f"{at}.parameters: schema must be a JSON Schema of type object")
                if function.get("strict"):
                    problems += openai_strict_problems(parameters, f"{at}.parameters")
        choice = body.get("tool_choice")
        if choice is not None:
            if not tools:
                problems.append("tool_choice is only allowed when tools are specified")
            named = isinstance(choice, dict) and (choice.get("function") or {}).get("name")
            if choice not in ("none", "auto", "required") and named not in names:
                problems.append(f"tool_choice: {choice!r} is not none, auto, required or a tool")
        response_format = body.get("response_format")
        if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
            spec = response_format.get("json_schema") or {}
            if not OPENAI_NAME.match(str(spec.get("name", ""))):
                problems.append("response_format.json_schema.name: invalid")
            schema = spec.get("schema")
            if not isinstance(schema, dict) or schema.get("type") != "object" or "anyOf" in schema:
                problems.append("response_format: schema must be a JSON Schema of type object")
            if spec.get("strict"):
                problems += openai_strict_problems(schema, "response_format.json_schema.schema")
        return problems

    @staticmethod
    def _message_problems(messages: Any) -> list[str]:
        if not isinstance(messages, list) or not messages:
            return ["messages: a non-empty array is required"]
        problems = []
        waiting: list[str] = []
        for n, message in enumerate(messages):
            role = message.get("role")
            if role not in ("system", "developer", "user", "assistant", "tool"):
                problems.append(f"messages[{n}].role: {role!r} is not a role")
            if role == "tool":
                if message.get("tool_call_id") not in waiting:
                    problems.append(
                        f"messages[{n}]: messages with role 'tool' must be a response to a "
                        "preceding message with 'tool_calls'"
                    )
                else:
                    waiting.remove(message["tool_call_id"])
                continue
            if waiting:
                problems.append(
                    "An assistant message with 'tool_calls' must be followed by tool messages "
                    f"responding to each 'tool_call_id'; not answered: {waiting}"
                )
                waiting = []
            if role == "assistant":
                waiting = [call.get("id") for call in message.get("tool_calls") or ()]
        if waiting:
            problems.append(f"tool calls not answered: {waiting}")
        return problems

    def seen(self, body: dict[str, Any]) -> Seen:
        system, messages = [], []
        for message in body["messages"]:
            role, content = message["role"], message.get("content") or ""
            text = content if isinstance(content, str) else json.dumps(content)
            if role in ("system", "developer"):
                system.append(text)
            elif message.get("tool_calls"):
                names = [call["function"]["name"] for call in message["tool_calls"]]
                messages.append(("assistant", f"calls: {', '.join(names)}"))
            else:
                messages.append((role, text))
        response_format = body.get("response_format") or {}
        schema = (response_format.get("json_schema") or {}).get("schema")
        tools = [tool["function"]["name"] for tool in body.get("tools") or ()]
        return Seen("openai", "\n".join(system), messages, tools, schema)

    def refusal(self, problems: list[str]) -> bytes:
        error = {
            "message": "; ".join(problems),
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
        return json.dumps({"error": error}).encode()

    def answer(self, path: str, body: dict[str, Any], reply: Reply) -> tuple[str, list[bytes]]:
        common = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "created": int(time.time()),
            "model": body.get("model", ""),
        }
        calls = [
            {
                "id": f"call_{uuid.uuid4().hex[:12]}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            for name, arguments in reply.calls
        ]
        finish = "tool_calls" if calls else "stop"
        usage = {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        }
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
            if calls:
                message["tool_calls"] = calls
            choice = {"index": 0, "message": message, "finish_reason": finish}
            whole = {**common, "object": "chat.completion", "choices": [choice], "usage": usage}
            return "application/json", [json.dumps(whole).encode()]

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            return {**common, "object": "chat.completion.chunk", "choices": [choice]}

        chunks = [chunk({"role": "assistant", "content": ""})]
        chunks += [chunk({"content": piece}) for piece in _words(reply.text)]
        for n, call in enumerate(calls):
            chunks.append(chunk({"tool_calls": [{"index": n, **call}]}))
        chunks.append(chunk({}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append(
                {**common, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            )
        events = [f"data: {json.dumps(item)}\n\n".encode() for item in chunks]
        return "text/event-stream", [*events, b"data: [DONE]\n\n"]


# --- Anthropic ------------------------------------------------------------------------------

JSON_TOOL: Final = "json_tool_call"
"""The tool litellm forces to get JSON from a Claude without native structured outputs."""


class AnthropicStub(ProviderStub):
    """Anthropic's Messages API (`/v1/messages`)."""

    name = "anthropic"

    def problems(self, path: str, headers: Mapping[str, str], body: dict[str, Any]) -> list[str]:
        if path != "/v1/messages":
            return [f"unknown URL {path}"]
        problems = []
        if not headers.get("x-api-key"):
            problems.append("x-api-key header is required")
        if not headers.get("anthropic-version"):
            problems.append("anthropic-version header is required")
        for key in sorted(set(body) - ANTHROPIC_FIELDS):
            problems.append(f"{key}: Extra inputs are not permitted")
        if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
            problems.append("max_tokens: Field required")
        problems += self._message_problems(body.get("messages"))
        names = []
        for n, tool in enumerate(body.get("tools") or ()):
            at = f"tools.{n}"
            name = tool.get("name", "")
            names.append(name)
            if not ANTHROPIC_NAME.match(name):
                problems.append(
                    f"{at}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
                )
            schema = tool.get("input_schema")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                problems.append(f"{at}.input_schema.type: Input should be 'object'")
            elif tool.get("strict"):
                problems += anthropic_structured_problems(schema, f"{at}.input_schema")
        choice = body.get("tool_choice")
        if choice is not None:
            kind = choice.get("type")
            if kind not in ("auto", "any", "tool", "none"):
                problems.append(f"tool_choice.type: {kind!r} is not auto, any, tool or none")
            if kind == "tool" and choice.get("name") not in names:
                problems.append(f"tool_choice.name: no tool {choice.get('name')!r}")
        output_format = body.get("output_format")
        if output_format is not None:
            if "structured-outputs" not in headers.get("anthropic-beta", ""):
                problems.append("output_format: needs the structured-outputs beta")
            if output_format.get("type") != "json_schema":
                problems.append("output_format.type: Input should be 'json_schema'")
            problems += anthropic_structured_problems(
                output_format.get("schema"), "output_format.schema"
            )
        return problems

    @staticmethod
    def _message_problems(messages: Any) -> list[str]:
        if not isinstance(messages, list) or not messages:
            return ["messages: at least one message is required"]
        problems = []
        pending: list[str] = []
        for n, message in enumerate(messages):
            at = f"messages.{n}"
            role = message.get("role")
            if role not in ("user", "assistant"):
                problems.append(f"{at}.role: Input should be 'user' or 'assistant'")
            content = message.get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            if not isinstance(blocks, list) or not blocks:
                problems.append(f"{at}.content: at least one block is required")
                continue
            answered = [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]
            if pending and sorted(answered) != sorted(pending):
                problems.append(
                    f"{at}: tool_use ids were found without tool_result blocks immediately "
                    f"after: {sorted(set(pending) - set(answered))}"
                )
            elif answered and not pending:
                problems.append(f"{at}: unexpected tool_use_id in tool_result blocks")
            pending = []
            for block in blocks:
                kind = block.get("type")
                if kind == "text" and not block.get("text"):
                    problems.append(f"{at}: text content blocks must be non-empty")
                elif kind == "tool_use":
                    if role != "assistant":
                        problems.append(f"{at}: tool_use blocks belong to the assistant")
                    pending.append(block.get("id"))
                elif kind == "tool_result" and role != "user":
                    problems.append(f"{at}: tool_result blocks belong to the user")
        if pending:
            problems.append(f"tool_use without a tool_result: {pending}")
        return problems

    def seen(self, body: dict[str, Any]) -> Seen:
        system = body.get("system") or ""
        if isinstance(system, list):
            system = "\n".join(block.get("text", "") for block in system)
        messages = []
        for message in body["messages"]:
            content = message["content"]
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            calls = [
                b["name"] for b in blocks if b["type"] == "tool_use" and b["name"] != JSON_TOOL
            ]
            if calls:
                messages.append(("assistant", f"calls: {', '.join(calls)}"))
            for block in blocks:
                if block["type"] == "text":
                    messages.append((message["role"], block["text"]))
                elif block["type"] == "tool_result":
                    result = block.get("content")
                    messages.append(
                        ("tool", result if isinstance(result, str) else json.dumps(result))
                    )
        tools = [tool["name"] for tool in body.get("tools") or () if tool["name"] != JSON_TOOL]
        schema = (body.get("output_format") or {}).get("schema")
        for tool in body.get("tools") or ():
            if tool["name"] == JSON_TOOL:
                schema = tool["input_schema"]
        return Seen("anthropic", system, messages, tools, schema)

    def refusal(self, problems: list[str]) -> bytes:
        error = {"type": "invalid_request_error", "message": "; ".join(problems)}
        return json.dumps({"type": "error", "error": error}).encode()

    def answer(self, path: str, body: dict[str, Any], reply: Reply) -> tuple[str, list[bytes]]:
        blocks: list[dict[str, Any]] = []
        json_tool = any(tool["name"] == JSON_TOOL for tool in body.get("tools") or ())
        if json_tool and reply.text:  # litellm asked for JSON through a forced tool
            blocks.append(self._tool_use(JSON_TOOL, json.loads(reply.text)))
        elif reply.text:
            blocks.append({"type": "text", "text": reply.text})
        blocks += [self._tool_use(name, arguments) for name, arguments in reply.calls]
        stop = "tool_use" if any(block["type"] == "tool_use" for block in blocks) else "end_turn"
        message = {
            "id": f"msg_{uuid.uuid4().hex[:16]}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", ""),
            "content": blocks,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {
                "input_tokens": reply.prompt_tokens,
                "output_tokens": reply.completion_tokens,
            },
        }
        if not body.get("stream"):
            return "application/json", [json.dumps(message).encode()]
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        **message,
                        "content": [],
                        "stop_reason": None,
                        "usage": {"input_tokens": reply.prompt_tokens, "output_tokens": 1},
                    },
                },
            )
        ]
        for n, block in enumerate(blocks):
            start: dict[str, Any]
            if block["type"] == "text":
                start = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": piece} for piece in _words(block["text"])]
            else:
                start = {**block, "input": {}}
                whole = json.dumps(block["input"])
                halves = [whole[: len(whole) // 2], whole[len(whole) // 2 :]]
                deltas = [{"type": "input_json_delta", "partial_json": half} for half in halves]
            events.append(
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": n, "content_block": start},
                )
            )
            events += [
                ("content_block_delta", {"type": "content_block_delta", "index": n, "delta": delta})
                for delta in deltas
            ]
            events.append(("content_block_stop", {"type": "content_block_stop", "index": n}))
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": reply.completion_tokens},
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        return "text/event-stream", [
            f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events
        ]

    @staticmethod
    def _tool_use(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "tool_use",
            "id": f"toolu_{uuid.uuid4().hex[:20]}",
            "name": name,
            "input": arguments,
        }


# --- Gemini ---------------------------------------------------------------------------------

# The API reads JSON field names in camelCase or in the proto's snake_case; the checks use
# one spelling. Only API fields are renamed, never a schema's property names.
_CAMEL: Final = {
    "system_instruction": "systemInstruction",
    "generation_config": "generationConfig",
    "tool_config": "toolConfig",
    "safety_settings": "safetySettings",
    "function_declarations": "functionDeclarations",
    "function_call": "functionCall",
    "function_response": "functionResponse",
    "inline_data": "inlineData",
    "file_data": "fileData",
    "max_output_tokens": "maxOutputTokens",
    "response_mime_type": "responseMimeType",
    "response_schema": "responseSchema",
    "response_json_schema": "responseJsonSchema",
    "stop_sequences": "stopSequences",
    "candidate_count": "candidateCount",
    "top_p": "topP",
    "top_k": "topK",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
    "thinking_config": "thinkingConfig",
    "function_calling_config": "functionCallingConfig",
    "allowed_function_names": "allowedFunctionNames",
    "parameters_json_schema": "parametersJsonSchema",
}


def _camel(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    return {_CAMEL.get(key, key): item for key, item in value.items()}


def gemini_body(body: dict[str, Any]) -> dict[str, Any]:
    """The request with its API field names in camelCase (schemas and arguments untouched)."""
    request: dict[str, Any] = _camel(body)
    request["contents"] = [
        {**content, "parts": [_camel(part) for part in content.get("parts") or ()]}
        for content in request.get("contents") or ()
    ]
    if "systemInstruction" in request:
        request["systemInstruction"] = _camel(request["systemInstruction"])
    request["tools"] = [
        {
            **_camel(tool),
            "functionDeclarations": [
                _camel(declaration)
                for declaration in _camel(tool).get("functionDeclarations") or ()
            ],
        }
        for tool in request.get("tools") or ()
    ]
    if "generationConfig" in request:
        request["generationConfig"] = _camel(request["generationConfig"])
    if "toolConfig" in request:
        config = _camel(request["toolConfig"])
        if "functionCallingConfig" in config:
            config["functionCallingConfig"] = _camel(config["functionCallingConfig"])
        request["toolConfig"] = config
    return request


class GeminiStub(ProviderStub):
    """The Gemini API (`/v1beta/models/MODEL:generateContent`, `:streamGenerateContent`)."""

    name = "gemini"
    base_path = "/v1beta"
    _PATH: ClassVar = re.compile(r"^/v1beta/models/[^/:]+:(generateContent|streamGenerateContent)$")

    def problems(self, path: str, headers: Mapping[str, str], body: dict[str, Any]) -> list[str]:
        parts = urlsplit(path)
        if not self._PATH.match(parts.path):
            return [f"unknown URL {parts.path}"]
        problems = []
        if not headers.get("x-goog-api-key") and "key" not in parse_qs(parts.query):
            problems.append("API key not valid. Please pass a valid API key.")
        request = gemini_body(body)
        for key in sorted(set(request) - GEMINI_FIELDS):
            problems.append(
                f"Invalid JSON payload received. Unknown name {key!r}: Cannot find field."
            )
        problems += self._content_problems(request.get("contents"))
        for n, tool in enumerate(request["tools"]):
            for m, declaration in enumerate(tool.get("functionDeclarations") or ()):
                at = f"tools[{n}].function_declarations[{m}]"
                name = declaration.get("name", "")
                if not GEMINI_NAME.match(name):
                    problems.append(f"{at}.name: invalid function name {name!r}")
                if "parameters" in declaration and "parametersJsonSchema" in declaration:
                    problems.append(f"{at}: parameters and parameters_json_schema are exclusive")
                if "parameters" in declaration:
                    problems += gemini_openapi_problems(
                        declaration["parameters"], f"{at}.parameters"
                    )
                if "parametersJsonSchema" in declaration:
                    problems += gemini_json_schema_problems(
                        declaration["parametersJsonSchema"], f"{at}.parameters_json_schema"
                    )
        config = request.get("generationConfig") or {}
        for key in sorted(set(config) - GEMINI_GENERATION_FIELDS):
            problems.append(f"Unknown name {key!r} at 'generation_config': Cannot find field.")
        if "responseSchema" in config and "responseJsonSchema" in config:
            problems.append("response_schema and response_json_schema are exclusive")
        if "responseSchema" in config or "responseJsonSchema" in config:
            if config.get("responseMimeType") != "application/json":
                problems.append("a response schema needs response_mime_type application/json")
        if "responseSchema" in config:
            problems += gemini_openapi_problems(
                config["responseSchema"], "generation_config.response_schema"
            )
        if "responseJsonSchema" in config:
            problems += gemini_json_schema_problems(
                config["responseJsonSchema"], "generation_config.response_json_schema"
            )
        calling = (request.get("toolConfig") or {}).get("functionCallingConfig") or {}
        mode = calling.get("mode", "AUTO")
        if mode not in ("AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED"):
            problems.append(f"tool_config.function_calling_config.mode: {mode!r}")
        if calling.get("allowedFunctionNames") and mode not in ("ANY", "VALIDATED"):
            problems.append("allowed_function_names needs mode ANY or VALIDATED")
        return problems

    @staticmethod
    def _content_problems(contents: Any) -> list[str]:
        if not isinstance(contents, list) or not contents:
            return ["contents is not specified"]
        problems = []
        calls = 0
        for n, content in enumerate(contents):
            at = f"contents[{n}]"
            role = content.get("role")
            if role not in ("user", "model"):
                problems.append(f"{at}.role: Please use a valid role: user, model.")
            parts = content.get("parts")
            if not isinstance(parts, list) or not parts:
                problems.append(f"{at}: contents.parts must not be empty.")
                continue
            for m, part in enumerate(parts):
                unknown = set(part) - GEMINI_PART_FIELDS - {"thoughtSignature"}
                if unknown:
                    problems.append(f"{at}.parts[{m}]: Unknown name {sorted(unknown)}")
                if len(set(part) & (GEMINI_PART_FIELDS - {"thought"})) != 1:
                    problems.append(f"{at}.parts[{m}]: exactly one data field is required")
            responses = sum(1 for part in parts if "functionResponse" in part)
            if calls and responses != calls:
                problems.append(
                    "Please ensure that the number of function response parts is equal to the "
                    "number of function call parts of the function call turn."
                )
            elif responses and not calls:
                problems.append(
                    "Please ensure that function response turn comes immediately after a "
                    "function call turn."
                )
            calls = sum(1 for part in parts if "functionCall" in part) if role == "model" else 0
        return problems

    def seen(self, body: dict[str, Any]) -> Seen:
        request = gemini_body(body)
        system = "\n".join(
            part.get("text", "")
            for part in (request.get("systemInstruction") or {}).get("parts") or ()
        )
        messages = []
        for content in request["contents"]:
            role = "assistant" if content["role"] == "model" else "user"
            calls = [
                part["functionCall"]["name"] for part in content["parts"] if "functionCall" in part
            ]
            if calls:
                messages.append(("assistant", f"calls: {', '.join(calls)}"))
            for part in content["parts"]:
                if "text" in part:
                    messages.append((role, part["text"]))
                elif "functionResponse" in part:
                    messages.append(("tool", json.dumps(part["functionResponse"].get("response"))))
        tools = [
            declaration["name"]
            for tool in request["tools"]
            for declaration in tool.get("functionDeclarations") or ()
        ]
        config = request.get("generationConfig") or {}
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        return Seen("gemini", system, messages, tools, schema)

    def refusal(self, problems: list[str]) -> bytes:
        error = {"code": 400, "message": "; ".join(problems), "status": "INVALID_ARGUMENT"}
        return json.dumps({"error": error}).encode()

    def answer(self, path: str, body: dict[str, Any], reply: Reply) -> tuple[str, list[bytes]]:
        usage = {
            "promptTokenCount": reply.prompt_tokens,
            "candidatesTokenCount": reply.completion_tokens,
            "totalTokenCount": reply.prompt_tokens + reply.completion_tokens,
        }
        parts: list[dict[str, Any]] = [{"text": piece} for piece in _words(reply.text)]
        parts += [{"functionCall": {"name": name, "args": args}} for name, args in reply.calls]

        def response(chunk_parts: list[dict[str, Any]], last: bool) -> dict[str, Any]:
            candidate: dict[str, Any] = {
                "content": {"role": "model", "parts": chunk_parts},
                "index": 0,
            }
            if last:
                candidate["finishReason"] = "STOP"
            item: dict[str, Any] = {"candidates": [candidate], "modelVersion": "stub"}
            if last:
                item["usageMetadata"] = usage
            return item

        if ":streamGenerateContent" not in path:
            return "application/json", [json.dumps(response(parts, True)).encode()]
        pieces = [response([part], n == len(parts) - 1) for n, part in enumerate(parts)]
        if not pieces:
            pieces = [response([{"text": ""}], True)]
        return "text/event-stream", [
            f"data: {json.dumps(piece)}\r\n\r\n".encode() for piece in pieces
        ]


PROVIDERS: Final[Mapping[str, tuple[type[ProviderStub], str]]] = {
    "openai": (OpenAIStub, "openai/gpt-4o-mini"),
    "anthropic": (AnthropicStub, "anthropic/claude-sonnet-4-5"),
    "gemini": (GeminiStub, "gemini/gemini-2.5-flash"),
}
"""Each stub and a model litellm knows to call tools natively, for deployments to name."""
