"""One agent turn, whichever way the model answers it: the schemas offered, the turn read back.

A model is offered the agent's tools in one of two ways, and the workflow must not care
which. With native tool calling the provider gets each tool as a function and answers
with tool calls (or plain text when it is done). On the schema path (the local model,
servers without tool calling) the model answers JSON constrained by the *decision
schema*: a root object holding one `decision`, which is either the answer or one call of
one tool with its typed arguments. Both come back as the same `Turn`.

Every schema sent to a provider is first made *strict* (`strict_schema`): a root object,
every object closed (`additionalProperties: false`) with every property required (an
optional one becomes nullable), `$ref` inlined, and only the keywords that OpenAI's
strict mode, Anthropic's structured outputs, Gemini and llama.cpp's grammar builder all
take: `type`, `properties`, `required`, `additionalProperties`, `items`, `enum`, `anyOf`,
`description`. Constraints dropped on the way (lengths, patterns, bounds) only loosen
what the model may say: the workflow validates every argument against the tool's full
schema before anything acts, as it always did. A schema that cannot be closed (a free-form
object, say, from an MCP server) is still sent, marked not strict.

Pure: no Temporal, no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from steward.models import CallPath as Path
from steward.models import Message, ModelTool, ModelToolCall

ANSWER: Final = "answer"
"""The action of a decision that answers instead of calling a tool."""

DECISION: Final = "decision"
"""The one property of the decision schema's root object."""

KEPT_KEYWORDS: Final = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "enum", "anyOf"}
)
NULL: Final[dict[str, Any]] = {"type": "null"}
MAX_DESCRIPTION_CHARS: Final = 1_000
_PROVIDER_NAME: Final = re.compile(r"[^A-Za-z0-9_-]")
PROVIDER_NAME_CHARS: Final = 64


@dataclass(frozen=True)
class StrictSchema:
    """A schema as providers get it, and whether it meets strict mode's rules."""

    schema: dict[str, Any]
    strict: bool


def strict_schema(schema: Mapping[str, Any]) -> StrictSchema:
    """`schema` in the subset every provider accepts, rooted in an object (see the module).

    A root that is not an object is refused (ValueError): a response or a tool's
    arguments are always an object.
    """
    converter = _Strictener(schema)
    converted = converter.convert(schema, ())
    if converted.get("type") != "object":
        raise ValueError(f"a response schema must have an object at its root, got {converted}")
    return StrictSchema(converted, converter.strict)


class _Strictener:
    def __init__(self, root: Mapping[str, Any]) -> None:
        definitions = root.get("$defs") or root.get("definitions") or {}
        self.definitions: Mapping[str, Any] = (
            definitions if isinstance(definitions, Mapping) else {}
        )
        self.strict = True

    def convert(self, node: Any, seen: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(node, Mapping):
            # `true` (anything) or a malformed node: nothing a strict schema can say.
            self.strict = False
            return {}
        node = self._resolved(node, seen)
        if "$ref" in node:  # recursive: cut here, as an open object
            self.strict = False
            return {"type": "object"}
        ref = node.get("$steward_ref")
        if ref is not None:
            seen = (*seen, ref)
        description = node.get("description")
        converted = self._shape(node, seen)
        if isinstance(description, str) and description.strip() and "anyOf" not in converted:
            converted["description"] = description[:MAX_DESCRIPTION_CHARS]
        return converted

    def _resolved(self, node: Mapping[str, Any], seen: tuple[str, ...]) -> Mapping[str, Any]:
        """The node with a local `$ref` replaced by its definition (siblings kept)."""
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return node
        name = ref.rsplit("/", 1)[-1]
        target = self.definitions.get(name)
        if not ref.startswith("#/") or not isinstance(target, Mapping) or name in seen:
            return node
        merged = {key: value for key, value in node.items() if key != "$ref"}
        return {**target, **merged, "$steward_ref": name}

    def _shape(self, node: Mapping[str, Any], seen: tuple[str, ...]) -> dict[str, Any]:
        for union in ("anyOf", "oneOf"):
            options = node.get(union)
            if isinstance(options, list) and options:
                return _union([self.convert(option, seen) for option in options])
        all_of = node.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1:
            rest = {key: value for key, value in node.items() if key != "allOf"}
            return self.convert({**all_of[0], **rest}, seen)
        if "const" in node:
            return {"enum": [node["const"]], **_type_of(node)}
        if isinstance(node.get("enum"), list):
            return {"enum": list(node["enum"]), **_type_of(node)}
        kind = node.get("type")
        if isinstance(kind, list):
            return _union([self.convert({**node, "type": one}, seen) for one in kind])
        if kind == "object" or (kind is None and "properties" in node):
            return self._object(node, seen)
        if kind == "array":
            items = node.get("items")
            if items is None:
                self.strict = False
                return {"type": "array"}
            return {"type": "array", "items": self.convert(items, seen)}
        if kind in ("string", "number", "integer", "boolean", "null"):
            return {"type": kind}
        self.strict = False  # no type: any value at all
        return {}

    def _object(self, node: Mapping[str, Any], seen: tuple[str, ...]) -> dict[str, Any]:
        properties = node.get("properties")
        if not isinstance(properties, Mapping) or not properties:
            if node.get("additionalProperties") is False:
                return {
                    "type": "object",
                    "properties": {},
                    "required": [],
                    "additionalProperties": False,
                }
            self.strict = False  # a free-form object: strict mode cannot say "any keys"
            return {"type": "object"}
        required = set(node.get("required") or ())
        converted = {}
        for name, sub in properties.items():
            schema = self.convert(sub, seen)
            converted[name] = schema if name in required else _nullable(schema)
        return {
            "type": "object",
            "properties": converted,
            "required": list(converted),
            "additionalProperties": False,
        }


def _type_of(node: Mapping[str, Any]) -> dict[str, Any]:
    kind = node.get("type")
    return {"type": kind} if isinstance(kind, str) else {}


def _union(options: list[dict[str, Any]]) -> dict[str, Any]:
    flat: list[dict[str, Any]] = []
    for option in options:
        for one in option.get("anyOf", [option]):
            if one not in flat:
                flat.append(one)
    return flat[0] if len(flat) == 1 else {"anyOf": flat}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if schema == {} or NULL in schema.get("anyOf", []) or schema.get("type") == "null":
        return schema
    return _union([schema, NULL])


# --- what the model is offered -----------------------------------------------------------


def tool_parameters(tool: ModelTool) -> StrictSchema:
    """A tool's arguments as providers get them. Never refuses: arguments whose schema has
    no object at its root (a malformed MCP schema) are offered as any object, not strict,
    and the tool's own schema judges what the model sends.
    """
    if tool.parameters is None:
        raise LookupError(
            f"tool {tool.name!r} is offered by name: its schema is filled in from the "
            "catalogue first (steward.tools.with_schemas)"
        )
    try:
        return strict_schema(tool.parameters)
    except ValueError:
        return StrictSchema({"type": "object"}, strict=False)


def decision_schema(tools: Sequence[ModelTool], *, answer: bool = True) -> dict[str, Any]:
    """JSON schema of one turn on the schema path: a root object whose `decision` is the
    answer or one call of one offered tool, with that tool's (strict) arguments. Without
    `answer`, the turn must call one of `tools`; with no tools, it must answer.

    Providers refuse a union at the root (OpenAI's strict mode, Anthropic's tool input),
    so the union sits one level down, under `decision`.
    """
    options: list[dict[str, Any]] = []
    if answer or not tools:
        options.append(
            _option({"action": {"type": "string", "enum": [ANSWER]}, "answer": {"type": "string"}})
        )
    for tool in tools:
        arguments = tool_parameters(tool).schema
        options.append(
            _option({"action": {"type": "string", "enum": [tool.name]}, "arguments": arguments})
        )
    return _option({DECISION: options[0] if len(options) == 1 else {"anyOf": options}})


def decision_strict(tools: Sequence[ModelTool]) -> bool:
    """Whether the decision schema for these tools meets strict mode's rules."""
    return all(tool_parameters(tool).strict for tool in tools)


def _option(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def format_instruction(path: Path, tools: Sequence[ModelTool]) -> str:
    """What the system prompt adds about how to answer, for the path the call takes.

    Natively the tools' names and descriptions go with the call; on the schema path the
    model reads them here.
    """
    if not tools:
        return ""
    if path == "native":
        return "Call a tool when you need one; when you are done, answer in plain text."
    listed = "\n".join(f"- {tool.name}: {tool.description}" for tool in tools)
    return (
        f"Tools you may call:\n{listed}\n\n"
        f'Answer with JSON: {{"{DECISION}": {{"action": TOOL, "arguments": {{...}}}}}} to call '
        f'a tool, or {{"{DECISION}": {{"action": "{ANSWER}", "answer": TEXT}}}} when you are '
        "done."
    )


def provider_names(tools: Sequence[ModelTool]) -> dict[str, str]:
    """A provider-safe function name for each tool (`^[A-Za-z0-9_-]{1,64}$`), all distinct.

    OpenAI, Anthropic and Gemini all take these; MCP tools (`server.tool`) do not qualify
    as they are. Keyed by the tool's own name.
    """
    names: dict[str, str] = {}
    taken: set[str] = set()
    for tool in tools:
        base = _PROVIDER_NAME.sub("_", tool.name)[:PROVIDER_NAME_CHARS] or "tool"
        name, n = base, 1
        while name in taken:
            n += 1
            suffix = f"_{n}"
            name = base[: PROVIDER_NAME_CHARS - len(suffix)] + suffix
        names[tool.name] = name
        taken.add(name)
    return names


# --- messages, as each path sends them -------------------------------------------------------


def wire_messages(
    messages: Sequence[Message], path: Path, names: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Messages in OpenAI's chat format (litellm's lingua franca) for the call's path.

    Natively, an assistant's tool calls and the results that answer them travel as
    `tool_calls` and `tool` messages. Any other way, and wherever a call and its results
    do not stand together (the window cut one off), they travel as text the schema path
    understands: the call as its decision JSON, the result as a user message.
    `messages` carry their full text (stored blobs already read back).
    """
    wire: list[dict[str, Any]] = []
    index = 0
    while index < len(messages):
        message = messages[index]
        if message.role == "assistant" and message.tool_calls:
            ids = [call.id for call in message.tool_calls]
            answers = messages[index + 1 : index + 1 + len(ids)]
            paired = [m.tool_call_id for m in answers if m.role == "tool"] == ids
            if path == "native" and paired:
                wire.append(_native_calls(message, names))
                wire.extend(
                    {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content}
                    for m in answers
                )
                index += 1 + len(ids)
                continue
            wire.append({"role": "assistant", "content": _calls_as_text(message)})
        elif message.role == "tool":
            wire.append({"role": "user", "content": message.content})
        else:
            wire.append({"role": message.role, "content": message.content})
        index += 1
    return wire


def _native_calls(message: Message, names: Mapping[str, str]) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": message.content or None,
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": names.get(call.name, call.name), "arguments": call.arguments},
            }
            for call in message.tool_calls
        ],
    }


def _calls_as_text(message: Message) -> str:
    lines = [message.content] if message.content else []
    for call in message.tool_calls:
        try:
            arguments: Any = json.loads(call.arguments)
        except ValueError:
            arguments = call.arguments
        lines.append(
            json.dumps({DECISION: {"action": call.name, "arguments": arguments}}, sort_keys=True)
        )
    return "\n".join(lines)


# --- the turn read back ----------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One tool call of a turn. `problem` says why its arguments could not be read."""

    id: str
    tool: str
    arguments: dict[str, Any]
    problem: str = ""


@dataclass(frozen=True)
class Turn:
    """What the model did in one turn: answered, called tools, or said something unreadable."""

    answer: str | None = None
    calls: list[Call] = field(default_factory=list)
    problem: str | None = None


def _not_json(constant: str) -> object:
    raise ValueError(f"{constant} is not JSON")


def parse_decision(text: str) -> tuple[str, object] | str:
    """(action, answer-or-arguments) from a schema-path answer, or why it is not one.

    Reads the decision schema's `{"decision": {...}}` and the flat `{"action": ...}` that
    runs recorded before it answered (so their histories replay as they ran).
    """
    try:
        data = json.loads(text, parse_constant=_not_json)
    except (ValueError, RecursionError):
        return "not JSON"
    if isinstance(data, dict) and isinstance(data.get(DECISION), dict):
        data = data[DECISION]
    if not isinstance(data, dict) or not isinstance(data.get("action"), str):
        return 'expected an object with a string "action"'
    if data["action"] == ANSWER:
        return ANSWER, data.get("answer", "")
    return data["action"], data.get("arguments", {})


def parse_turn(
    text: str, tool_calls: Sequence[ModelToolCall], path: Path, tools: Sequence[ModelTool]
) -> Turn:
    """The turn in a model's answer, as the path it took says to read it.

    Natively, tool calls are the calls and text without any is the answer. Otherwise
    the text must be a decision (recorded runs answered so too). Nulls the strict schema
    let the model send for optional arguments are dropped, so each tool's own defaults
    apply.
    """
    schemas = {tool.name: tool.parameters for tool in tools if tool.parameters is not None}
    if tool_calls:
        return Turn(calls=[_native_call(call, schemas) for call in tool_calls])
    if path == "native":
        return Turn(answer=text) if text.strip() else Turn(problem="the answer was empty")
    decided = parse_decision(text)
    if isinstance(decided, str):
        return Turn(problem=decided)
    action, payload = decided
    if action == ANSWER:
        return Turn(answer=str(payload))
    arguments = payload if isinstance(payload, dict) else {}
    return Turn(calls=[Call("", action, without_nulls(arguments, schemas.get(action)))])


def _native_call(call: ModelToolCall, schemas: Mapping[str, Mapping[str, Any]]) -> Call:
    try:
        arguments = json.loads(call.arguments or "{}", parse_constant=_not_json)
    except (ValueError, RecursionError):
        return Call(call.id, call.name, {}, "the arguments are not JSON")
    if not isinstance(arguments, dict):
        return Call(call.id, call.name, {}, "the arguments are not a JSON object")
    return Call(call.id, call.name, without_nulls(arguments, schemas.get(call.name)))


def without_nulls(arguments: dict[str, Any], schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """`arguments` without the nulls sent for properties `schema` does not require.

    Strict schemas make every property required and the optional ones nullable; a null
    there means "not given", so the tool's default applies. Nested objects are cleaned
    the same way, by their own (possibly referenced) schemas.
    """
    if schema is None:
        return arguments
    definitions = schema.get("$defs") or schema.get("definitions") or {}
    cleaned: dict[str, Any] = _clean(
        arguments, schema, definitions if isinstance(definitions, Mapping) else {}, 0
    )
    return cleaned


def _clean(value: Any, schema: Any, definitions: Mapping[str, Any], depth: int) -> Any:
    if not isinstance(value, dict) or not isinstance(schema, Mapping) or depth > 32:
        return value
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = definitions.get(ref.rsplit("/", 1)[-1])
        schema = target if isinstance(target, Mapping) else schema
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return value
    required = set(schema.get("required") or ())
    return {
        key: _clean(item, properties.get(key), definitions, depth + 1)
        for key, item in value.items()
        if not (item is None and key in properties and key not in required)
    }
